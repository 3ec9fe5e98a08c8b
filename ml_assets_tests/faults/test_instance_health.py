"""Reaping on a real sqlite instance: which runs are dead, and what they give back.

Each run here is created in the instance and started with a RUN_START event written "by" a real
process (a `sleep` child we control), then claims or queues for the `duckdb_warehouse` slot
through the instance's concurrency storage, as a step does. The process is then left alive,
killed and waited for, killed and left a zombie, or outlived by the run (pid reused). The
end-to-end version, a real data-layer run killed with `kill -9`, is `test_kill_data_layers.py`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_assets import instance_health
from ml_assets.automation.reaper import SENSOR_NAME
from ml_assets.definitions import load_definitions
from ml_assets.instance_health import PoolBusyError, reap_dead_runs, wait_for_free_slot
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import WAREHOUSE_POOL
from ml_assets_tests.conftest import REPO


@dg.op(pool=WAREHOUSE_POOL)
def write_step() -> None:
    """Stands for any step in the warehouse pool."""


@dg.job
def tiny_job() -> None:
    write_step()


@pytest.fixture
def pool(sqlite_instance: dg.DagsterInstance) -> str:
    """The pool with the limit dagster.yaml gives it (1), as the first claiming step sets it."""
    sqlite_instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
    assert sqlite_instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count == 1
    return WAREHOUSE_POOL


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def spawn(processes: list[subprocess.Popen]) -> subprocess.Popen:
    proc = subprocess.Popen(["sleep", "120"])
    processes.append(proc)
    return proc


def started_run(
    instance: dg.DagsterInstance,
    pid: int | None,
    *,
    seen_at: float | None = None,
    claim: bool = True,
) -> str:
    """A STARTED run whose RUN_START was written by `pid`, holding or queueing for the slot."""
    run = instance.create_run_for_job(job_def=tiny_job, status=dg.DagsterRunStatus.NOT_STARTED)
    instance.report_dagster_event(
        dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid),
        run.run_id,
        timestamp=seen_at,
    )
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    if claim:
        instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "write_step")
    return run.run_id


def holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
    return info.active_run_ids | {s.run_id for s in info.pending_steps}


def status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def test_a_run_whose_process_is_alive_is_never_reaped(
    sqlite_instance: dg.DagsterInstance, pool: str, processes: list[subprocess.Popen]
) -> None:
    run_id = started_run(sqlite_instance, spawn(processes).pid)
    (health,) = reap_dead_runs(sqlite_instance)
    assert (health.verdict, health.action) == ("alive", "left alone")
    assert status(sqlite_instance, run_id) == dg.DagsterRunStatus.STARTED
    assert holders(sqlite_instance) == {run_id}


@pytest.mark.parametrize("how", ["killed", "zombie", "pid_reused"])
def test_a_dead_run_is_failed_and_its_slot_freed(
    how: str, sqlite_instance: dg.DagsterInstance, pool: str, processes: list[subprocess.Popen]
) -> None:
    proc = spawn(processes)
    seen_at = None
    if how == "killed":
        proc.kill()
        proc.wait()
    elif how == "zombie":  # killed, not yet waited for by its parent: /proc still lists it
        proc.kill()
        time.sleep(0.2)
        assert Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1].startswith("Z")
    else:  # the run recorded this pid an hour before this process existed
        seen_at = time.time() - 3600
    run_id = started_run(sqlite_instance, proc.pid, seen_at=seen_at)
    assert holders(sqlite_instance) == {run_id}

    (health,) = reap_dead_runs(sqlite_instance)

    assert (health.run_id, health.verdict, health.action) == (run_id, "dead", "reaped")
    assert health.freed_pools == (WAREHOUSE_POOL,)
    run = sqlite_instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    (failure,) = sqlite_instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert f"({proc.pid}) are gone" in failure.dagster_event.message
    assert holders(sqlite_instance) == set()
    # The slot serves the next run at once.
    fresh = sqlite_instance.create_run_for_job(job_def=tiny_job)
    claim = sqlite_instance.event_log_storage.claim_concurrency_slot(
        pool, fresh.run_id, "write_step"
    )
    assert claim.is_claimed


def test_dead_runs_queued_for_the_slot_are_removed_from_the_queue(
    sqlite_instance: dg.DagsterInstance, pool: str, processes: list[subprocess.Popen]
) -> None:
    """A run killed while waiting for the slot stays in the queue; once the holder's slot is
    freed it would be handed the slot it can never release."""
    dead = spawn(processes)
    holder = started_run(sqlite_instance, dead.pid)
    waiter = started_run(sqlite_instance, dead.pid)
    info = sqlite_instance.event_log_storage.get_concurrency_info(pool)
    assert info.active_run_ids == {holder} and info.pending_run_ids == {waiter}
    dead.kill()
    dead.wait()

    reaped = {h.run_id: h.action for h in reap_dead_runs(sqlite_instance)}

    assert reaped == {holder: "reaped", waiter: "reaped"}
    assert holders(sqlite_instance) == set()


def test_a_finished_run_that_kept_its_slot_gives_it_back(
    sqlite_instance: dg.DagsterInstance, pool: str, processes: list[subprocess.Popen]
) -> None:
    """Marked FAILURE (a step worker that failed to load the code) but never released the claim;
    the process that ran it may well be alive (in-process runs share it with the caller)."""
    run_id = started_run(sqlite_instance, spawn(processes).pid)
    sqlite_instance.report_run_failed(sqlite_instance.get_run_by_id(run_id), "step worker died")
    assert holders(sqlite_instance) == {run_id}

    (health,) = reap_dead_runs(sqlite_instance)

    assert (health.verdict, health.action) == ("finished", "reaped")
    assert holders(sqlite_instance) == set()
    assert status(sqlite_instance, run_id) == dg.DagsterRunStatus.FAILURE
    assert len(sqlite_instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)) == 1


def test_a_finished_run_with_a_live_step_worker_keeps_its_slot(
    sqlite_instance: dg.DagsterInstance, pool: str, processes: list[subprocess.Popen]
) -> None:
    """The run's orchestrator ended, but a step subprocess it started still writes."""
    orchestrator, worker = spawn(processes), spawn(processes)
    run_id = started_run(sqlite_instance, orchestrator.pid)
    run = sqlite_instance.get_run_by_id(run_id)
    step_start = dg.DagsterEvent(
        dg.DagsterEventType.STEP_START.value,
        job_name=run.job_name,
        step_key="write_step",
        pid=worker.pid,
    )
    sqlite_instance.report_dagster_event(step_start, run_id)
    sqlite_instance.report_run_failed(run, "orchestrator gave up")

    (health,) = reap_dead_runs(sqlite_instance)
    assert (health.verdict, health.pids) == ("alive", (worker.pid,))
    assert holders(sqlite_instance) == {run_id}

    worker.kill()
    worker.wait()
    (health,) = reap_dead_runs(sqlite_instance)
    assert health.action == "reaped" and holders(sqlite_instance) == set()


def test_a_run_that_recorded_no_pid_is_left_to_the_daemon(
    sqlite_instance: dg.DagsterInstance, pool: str
) -> None:
    run_id = started_run(sqlite_instance, None, claim=False)
    (health,) = reap_dead_runs(sqlite_instance)
    assert (health.verdict, health.action) == ("unknown", "left alone")
    assert status(sqlite_instance, run_id) == dg.DagsterRunStatus.STARTED


def test_dry_run_reports_and_changes_nothing(
    sqlite_instance: dg.DagsterInstance,
    pool: str,
    processes: list[subprocess.Popen],
    capsys: pytest.CaptureFixture,
) -> None:
    dead = spawn(processes)
    run_id = started_run(sqlite_instance, dead.pid)
    dead.kill()
    dead.wait()

    assert instance_health.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would reap {run_id} (tiny_job, STARTED): dead" in out
    assert "pool duckdb_warehouse: 1 / 1 slots occupied" in out
    assert status(sqlite_instance, run_id) == dg.DagsterRunStatus.STARTED

    assert instance_health.main([]) == 0
    out = capsys.readouterr().out
    assert f"reaped {run_id}" in out and "0 / 1 slots occupied" in out


def test_waiting_for_the_slot_is_bounded_and_names_the_holder(
    sqlite_instance: dg.DagsterInstance, pool: str, processes: list[subprocess.Popen]
) -> None:
    live = spawn(processes)
    run_id = started_run(sqlite_instance, live.pid)
    t0 = time.monotonic()
    with pytest.raises(PoolBusyError) as err:
        wait_for_free_slot(sqlite_instance, pool, timeout_seconds=1.0, poll_seconds=0.2)
    assert 1.0 <= time.monotonic() - t0 < 10
    assert run_id in str(err.value) and f"pid(s) [{live.pid}]" in str(err.value)
    assert "duckdb_warehouse" in str(err.value)

    # The holder dies during the wait: the wait reaps it and returns.
    live.kill()
    live.wait()
    wait_for_free_slot(sqlite_instance, pool, timeout_seconds=5.0, poll_seconds=0.2)
    assert holders(sqlite_instance) == set()


def test_the_repo_instance_monitors_runs_and_frees_finished_runs_slots(dagster_home: Path) -> None:
    """dagster.yaml loads with Dagster's schema and turns on what the daemon needs."""
    assert (dagster_home / "dagster.yaml").read_text() == (REPO / "dagster.yaml").read_text()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert 0 < instance.run_monitoring_settings["free_slots_after_run_end_seconds"] <= 60
        assert "MONITORING" in instance.get_required_daemon_types()


def test_the_daemons_reaper_sensor_frees_a_dead_runs_slot_and_leaves_a_live_one(
    sqlite_instance: dg.DagsterInstance, pool: str, processes: list[subprocess.Popen]
) -> None:
    """What `dagster dev` does unattended every 30 s: the project's `reap_dead_runs` sensor,
    evaluated as the daemon evaluates it, on the real instance."""
    alive = started_run(sqlite_instance, spawn(processes).pid, claim=False)
    dead_proc = spawn(processes)
    dead_proc.kill()
    dead_proc.wait()
    dead = started_run(sqlite_instance, dead_proc.pid)
    sensor = load_definitions().resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    resources = {"mlflow": MlflowTracking()}
    tick = sensor.evaluate_tick(
        dg.build_sensor_context(instance=sqlite_instance, resources=resources)
    )

    assert tick.skip_message == f"reaped 1 dead run(s): {dead}"
    assert status(sqlite_instance, dead) == dg.DagsterRunStatus.FAILURE
    assert status(sqlite_instance, alive) == dg.DagsterRunStatus.STARTED
    assert holders(sqlite_instance) == set()
    again = sensor.evaluate_tick(
        dg.build_sensor_context(instance=sqlite_instance, resources=resources)
    )
    assert again.skip_message == "no dead run holds a slot or claims to be running"
