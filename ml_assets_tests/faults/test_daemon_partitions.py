"""Eight partitions launched at once from `dagster dev`: the daemon runs them all to success.

What a UI user does: `dagster dev` (webserver + daemon, the repo's dagster.yaml: queued run
coordinator, pool limit 1, run monitoring), then eight daily partitions of flights' data layers
launched together. Each launch here is the webserver's own GraphQL mutation (the one the UI's
launch button sends), so the runs are enqueued, dequeued by the daemon and executed each in its
own run-worker process by the default run launcher, not in-process. Their warehouse steps take
turns through the `duckdb_warehouse` pool instead of failing on DuckDB's file lock, every run
succeeds, every day ends whole (raw = validated + quarantine), and the pool is free afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_graphql import DagsterGraphQLClient

from ml_assets import settings
from ml_assets.local_postgres import free_port
from ml_assets.resources.warehouse import WAREHOUSE_POOL
from ml_assets_tests.conftest import REPO

# Slow tier (a real `dagster dev` and eight run workers: 2-4 minutes on 2 cores).
pytestmark = pytest.mark.slow

DAYS = [f"2013-05-{d:02d}" for d in range(1, 9)]
JOB = "flights__daily_layers"
STARTUP_S = 180
RUNS_S = 600


@pytest.fixture
def dagster_dev(home: Path) -> Iterator[tuple[DagsterGraphQLClient, Path, subprocess.Popen]]:
    dagster_home = home / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    log = (home / "dagster_dev.log").open("w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home), "ML_ASSETS_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert proc.poll() is None, (home / "dagster_dev.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "dagster dev did not start in time"
                time.sleep(1)
        yield DagsterGraphQLClient("127.0.0.1", port_number=port), dagster_home, proc
    finally:
        # Ctrl-C, as a user stops it: dagster dev stops the webserver, daemon and code server.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_eight_partitions_launched_at_once_from_dagster_dev_all_succeed(
    home: Path, dagster_dev: tuple[DagsterGraphQLClient, Path, subprocess.Popen]
) -> None:
    client, dagster_home, dev = dagster_dev
    run_ids = {
        day: client.submit_job_execution(
            JOB,
            repository_location_name="ml_assets",
            tags={"dagster/partition": day},
        )
        for day in DAYS
    }

    deadline = time.monotonic() + RUNS_S
    statuses: dict[str, dg.DagsterRunStatus] = {}
    while True:
        statuses = {day: client.get_run_status(rid) for day, rid in run_ids.items()}
        if all(
            s in {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
            for s in statuses.values()
        ):
            break
        assert dev.poll() is None, "dagster dev exited while the runs were in flight"
        assert time.monotonic() < deadline, f"runs not finished in {RUNS_S} s: {statuses}"
        time.sleep(2)
    assert statuses == dict.fromkeys(DAYS, dg.DagsterRunStatus.SUCCESS)

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        pids = set()
        for day, run_id in run_ids.items():
            run = instance.get_run_by_id(run_id)
            assert run.tags["dagster/partition"] == day
            kinds = {
                e.dagster_event.event_type for e in instance.all_logs(run_id) if e.dagster_event
            }
            # Queued by the coordinator and handed out by the daemon, not run in the webserver.
            assert {
                dg.DagsterEventType.RUN_ENQUEUED,
                dg.DagsterEventType.RUN_STARTING,
                dg.DagsterEventType.RUN_SUCCESS,
            } <= kinds
            (start,) = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
            pids.add(start.dagster_event.pid)
        # Each run had its own run-worker process, none of them dagster dev itself.
        assert len(pids) == len(DAYS) and dev.pid not in pids
        info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert info.slot_count == 1 and not info.active_run_ids and not info.pending_run_ids

    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        counts = dict(
            conn.execute(
                """
                SELECT r.day, r.n = coalesce(v.n, 0) + coalesce(q.n, 0)
                FROM (SELECT _partition_date::VARCHAR AS day, count(*) AS n FROM flights.raw
                      GROUP BY ALL) r
                LEFT JOIN (SELECT _partition_date::VARCHAR AS day, count(*) AS n
                           FROM flights.validated GROUP BY ALL) v USING (day)
                LEFT JOIN (SELECT _partition_date::VARCHAR AS day, count(*) AS n
                           FROM flights.quarantine GROUP BY ALL) q USING (day)
                """
            ).fetchall()
        )
        featurized = conn.execute(
            "SELECT DISTINCT _partition_date::VARCHAR FROM flights.features ORDER BY 1"
        ).fetchall()
    assert counts == dict.fromkeys(DAYS, True)
    assert [d for (d,) in featurized] == DAYS
