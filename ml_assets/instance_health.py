"""Give back what dead runs hold: pool slots, and a run status that says they are running.

A run killed with `kill -9` (or OOM-killed) never writes its end: Dagster keeps it STARTED and
keeps its claimed or assigned `duckdb_warehouse` slot, and because that pool has one slot every
later run waits for it forever. A run that failed before its steps released their claims (a step
worker that could not load the code) is FAILURE but still holds its slot. Dagster's monitoring
daemon frees the slots of finished runs (`free_slots_after_run_end_seconds` in dagster.yaml), but
the default run launcher cannot tell whether a STARTED run's worker is alive, and the headless
paths (`make run`, scripts) run without a daemon. So they call `prepare_headless` first.

How a run is judged dead: every Dagster event records the pid of the process that wrote it, and
the run-worker and in-process executors also put their pid in an engine event. A STARTING,
STARTED or CANCELING run is dead when it recorded at least one pid and none of those processes
is still alive (gone, a zombie, or a pid since reused by a newer process). A run that recorded no
pid is left to the daemon's `start_timeout_seconds`. A finished run's slots are freed unless one
of its step-worker processes (a pid seen only on step events) is still alive. Pids mean something
on this host only, so on non-local instance storage in-progress runs are never judged.

`python -m ml_assets.instance_health` (`make reap`) prints the verdicts; `--dry-run` changes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason

from ml_assets.resources.warehouse import WAREHOUSE_POOL

log = logging.getLogger(__name__)

Verdict = Literal["dead", "finished", "alive", "unknown"]

JUDGED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
# The events that carry the writer's pid at the points a run's processes start.
PID_EVENTS = {
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.ENGINE_EVENT,
    dg.DagsterEventType.STEP_WORKER_STARTED,
    dg.DagsterEventType.STEP_START,
}
# /proc start times are whole clock ticks after a boot time given in whole seconds.
PID_REUSE_TOLERANCE_S = 2.0
# Storage on this machine, whose runs' pids are this machine's processes.
LOCAL_RUN_STORAGE = {"SqliteRunStorage", "InMemoryRunStorage"}


class PoolBusyError(RuntimeError):
    """A pool stayed full of live runs for longer than the caller was willing to wait."""


@dataclass(frozen=True)
class RunProcesses:
    """The processes a run recorded: orchestrators (run-level events) and step workers."""

    orchestrators: dict[int, float] = field(default_factory=dict)  # pid -> first seen (epoch s)
    workers: dict[int, float] = field(default_factory=dict)

    @property
    def all(self) -> dict[int, float]:
        return {**self.workers, **self.orchestrators}


@dataclass(frozen=True)
class RunHealth:
    """What reaping found for one run, and what it did."""

    run_id: str
    job_name: str
    status: str
    verdict: Verdict
    detail: str
    pids: tuple[int, ...] = ()
    freed_pools: tuple[str, ...] = ()
    action: Literal["reaped", "would reap", "left alone"] = "left alone"

    def line(self) -> str:
        return f"{self.action} {self.run_id} ({self.job_name}, {self.status}): {self.verdict}: {self.detail}"


def process_alive(pid: int, seen_at: float) -> bool:
    """Whether `pid` is a running process that already existed when a run recorded it at
    `seen_at`: a zombie has exited, and a process started later reused a dead run's pid."""
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():  # no procfs (macOS): existence only
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        text = stat.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # Fields after "(comm)": state is field 3 of stat(5), starttime field 22.
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in {"Z", "X"}:
        return False
    started_at = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started_at <= seen_at + PID_REUSE_TOLERANCE_S


@cache
def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime")


def run_processes(instance: dg.DagsterInstance, run_id: str) -> RunProcesses:
    """The pids a run's events were written by, split into orchestrators and step workers."""
    run_level: dict[int, float] = {}
    step_level: dict[int, float] = {}
    for entry in instance.all_logs(run_id, of_type=PID_EVENTS):
        event = entry.dagster_event
        if event is None:
            continue
        pids = {event.pid} if event.pid is not None else set()
        if event.step_key is None and event.event_type == dg.DagsterEventType.ENGINE_EVENT:
            # "Started process for run (pid: n)" is reported without the event's own pid.
            value = event.engine_event_data.metadata.get("pid")
            if value is not None and str(value.value).isdigit():
                pids.add(int(value.value))
        target = step_level if event.step_key is not None else run_level
        for pid in pids:
            target.setdefault(pid, entry.timestamp)
    workers = {p: t for p, t in step_level.items() if p not in run_level}
    return RunProcesses(orchestrators=run_level, workers=workers)


def slot_holders(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Run id -> pools in which it holds a slot or a place in the queue."""
    storage = instance.event_log_storage
    holders: dict[str, set[str]] = {}
    if not storage.supports_global_concurrency_limits:
        return holders
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        for run_id in info.active_run_ids | {s.run_id for s in info.pending_steps}:
            holders.setdefault(run_id, set()).add(pool)
    return holders


def _is_local(instance: dg.DagsterInstance) -> bool:
    return type(instance.run_storage).__name__ in LOCAL_RUN_STORAGE


def _judge(
    instance: dg.DagsterInstance, run: dg.DagsterRun, local: bool
) -> tuple[Verdict, str, tuple[int, ...]]:
    procs = run_processes(instance, run.run_id) if local else RunProcesses()
    if run.status in FINISHED:
        alive = [p for p, t in procs.workers.items() if process_alive(p, t)]
        if alive:
            return "alive", f"finished, but step worker pid(s) {alive} still run", tuple(alive)
        return "finished", "finished; no step worker of it is alive", tuple(procs.all)
    if run.status not in JUDGED:
        return "unknown", "not started or suspended: the run queue's business", ()
    if not local:
        return "unknown", "instance storage is not local: its pids are not this host's", ()
    if not procs.all:
        return "unknown", "recorded no pid yet (the daemon's start timeout covers it)", ()
    alive = [p for p, t in procs.all.items() if process_alive(p, t)]
    if alive:
        return "alive", f"pid(s) {alive} alive", tuple(alive)
    return "dead", f"every process it recorded ({sorted(procs.all)}) is gone", tuple(procs.all)


def reap_dead_runs(instance: dg.DagsterInstance, *, dry_run: bool = False) -> list[RunHealth]:
    """Fail runs whose processes are gone and free every slot held by a dead or finished run.

    Looks at runs that hold a pool slot (or queue for one) and at every STARTING, STARTED or
    CANCELING run. Never touches a run with a live process. Returns one verdict per run looked at.
    """
    holders = slot_holders(instance)
    in_progress = instance.get_runs(filters=dg.RunsFilter(statuses=JUDGED))
    run_ids = list(dict.fromkeys([*holders, *(r.run_id for r in in_progress)]))
    local = _is_local(instance)
    results = []
    for run_id in run_ids:
        pools = tuple(sorted(holders.get(run_id, ())))
        run = instance.get_run_by_id(run_id)
        if run is None:
            # Slots of a deleted run: nothing can ever release them.
            if not dry_run:
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            action = "would reap" if dry_run else "reaped"
            results.append(
                RunHealth(run_id, "?", "DELETED", "dead", "run no longer exists", (), pools, action)
            )
            continue
        verdict, detail, pids = _judge(instance, run, local)
        act = verdict == "dead" or (verdict == "finished" and bool(pools))
        if act and not dry_run:
            if verdict == "dead":
                _mark_dead(instance, run, pids, pools)
            if pools:
                instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        action = ("would reap" if dry_run else "reaped") if act else "left alone"
        health = RunHealth(
            run_id,
            run.job_name,
            run.status.value,
            verdict,
            detail,
            pids,
            pools if act else (),
            action,
        )
        if act:
            log.warning("%s", health.line())
        results.append(health)
    return results


def _mark_dead(
    instance: dg.DagsterInstance, run: dg.DagsterRun, pids: Sequence[int], pools: Iterable[str]
) -> None:
    held = f"; freed its place in pool(s) {', '.join(pools)}" if pools else ""
    message = (
        f"Marked {'canceled' if run.status == dg.DagsterRunStatus.CANCELING else 'failed'} by "
        f"ml_assets.instance_health: the process(es) that ran it ({', '.join(map(str, sorted(pids)))}) "
        f"are gone without recording an end (killed or crashed) while the run was "
        f"{run.status.value}{held}. Its partition writes are transactional: rerun it."
    )
    if run.status == dg.DagsterRunStatus.CANCELING:
        instance.report_run_canceled(run, message)
    else:
        instance.report_run_failed(
            run,
            message,
            JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
        )


def wait_for_free_slot(
    instance: dg.DagsterInstance,
    pool: str = WAREHOUSE_POOL,
    *,
    timeout_seconds: float = 600.0,
    poll_seconds: float = 2.0,
) -> None:
    """Wait, reaping as holders die, until `pool` has a slot nobody holds or queues for.

    Dagster waits for a slot without a deadline (and, in-process, without sleeping); this bounds
    the wait at the start of a headless run and names the runs it waited for.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    deadline = time.monotonic() + timeout_seconds
    while True:
        reap_dead_runs(instance)
        info = storage.get_concurrency_info(pool)
        if info.limit == 0:
            raise PoolBusyError(
                f"pool {pool} has limit 0: no step in it can ever run "
                f"(`dagster instance concurrency set {pool} 1`)"
            )
        if info.slot_count == 0 or info.slot_count > info.assigned_step_count:
            return
        if time.monotonic() >= deadline:
            holders = info.active_run_ids | info.assigned_run_ids
            raise PoolBusyError(_busy_message(instance, pool, holders, timeout_seconds))
        time.sleep(poll_seconds)


def _busy_message(
    instance: dg.DagsterInstance, pool: str, run_ids: Iterable[str], waited: float
) -> str:
    holders = []
    for run_id in sorted(run_ids):
        run = instance.get_run_by_id(run_id)
        pids = sorted(run_processes(instance, run_id).all) if run else []
        holders.append(
            f"run {run_id} ({run.job_name}, {run.status.value}, pid(s) {pids})"
            if run
            else f"run {run_id} (deleted)"
        )
    return (
        f"gave up after {waited:.0f}s waiting for a free slot in pool {pool}, held by "
        f"{'; '.join(holders) or 'steps assigned but not yet claimed'}. They are alive: let them "
        f"finish or cancel them in the UI (the pool has one slot because DuckDB allows one writer)."
    )


def prepare_headless(instance: dg.DagsterInstance, timeout_seconds: float = 600.0) -> None:
    """Before a headless entry point launches runs: reap dead runs, then wait (bounded) for the
    warehouse pool to have a free slot."""
    wait_for_free_slot(instance, WAREHOUSE_POOL, timeout_seconds=timeout_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml_assets.instance_health", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    log.setLevel(logging.ERROR)  # the verdicts go to stdout below
    with dg.DagsterInstance.get() as instance:
        results = reap_dead_runs(instance, dry_run=args.dry_run)
        for health in results:
            sys.stdout.write(health.line() + "\n")
        storage = instance.event_log_storage
        pools = storage.get_concurrency_keys() if storage.supports_global_concurrency_limits else []
        for pool in sorted(pools):
            info = storage.get_concurrency_info(pool)
            sys.stdout.write(
                f"pool {pool}: {info.active_slot_count} / {info.slot_count} slots occupied, "
                f"{info.pending_step_count} step(s) waiting\n"
            )
        if not results:
            sys.stdout.write("no run holds a slot or is in progress\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
