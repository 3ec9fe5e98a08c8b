"""The graph's runs on a Dagster instance in PostgreSQL (`dagster.postgres.yaml`): real runs of
data-layer partitions, with their runs, events and materializations read back from Postgres."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest
from dagster_postgres import (
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)

from ml_assets import settings
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets.local_postgres import LocalPostgres
from ml_assets_tests.conftest import REPO

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


def pg_rows(postgres: LocalPostgres, sql: str, *params: object) -> list[tuple]:
    conn = psycopg2.connect(postgres.dsn(os.environ["DAGSTER_PG_DB"]))
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def test_data_layer_backfill_is_stored_in_postgres(
    home, orders_spec, postgres, pg_dagster_home, pg_instance
) -> None:
    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    # build_defs loads ml_assets.definitions, which patches the SQLite event log (batches,
    # synchronous=OFF): those patches must leave the Postgres event log alone.
    job = build_defs([orders_spec]).resolve_job_def("orders__daily_layers")
    result = job.execute_in_process(
        instance=pg_instance, tags={RANGE_START: DAYS[0], RANGE_END: DAYS[-1]}
    )
    assert result.success
    run_id = result.run_id

    # The run, its events and the per-partition materializations are rows in Postgres.
    assert pg_rows(postgres, "SELECT status FROM runs WHERE run_id = %s", run_id) == [("SUCCESS",)]
    mats = pg_rows(
        postgres,
        "SELECT asset_key, partition FROM event_logs WHERE run_id = %s "
        "AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY 1, 2",
        run_id,
    )
    layers = ['["orders", "quarantine"]', '["orders", "raw"]', '["orders", "validated"]']
    assert [m for m in mats if m[1] is not None] == [(k, d) for k in layers for d in DAYS]
    # Every daily check result was stored per partition (beside the range's own result), and
    # passed on these clean days.
    checks = pg_rows(
        postgres,
        "SELECT check_name, partition, execution_status FROM asset_check_executions "
        "WHERE run_id = %s AND asset_key = %s AND check_name = 'row_conservation' "
        "AND partition IS NOT NULL ORDER BY 2",
        run_id,
        '["orders", "validated"]',
    )
    assert checks == [("row_conservation", d, "SUCCEEDED") for d in DAYS]

    # A new instance from the same configuration (another process would do the same) sees it all
    # through Dagster's own APIs.
    with dg.DagsterInstance.from_config(str(pg_dagster_home)) as again:
        assert again.get_run_by_id(run_id).is_success
        key = dg.AssetKey(["orders", "validated"])
        assert again.get_materialized_partitions(key) == set(DAYS)
        record = again.get_latest_materialization_event(key)
        assert record is not None and record.run_id == run_id
    # And the warehouse holds what the run says it wrote.
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        days = conn.execute(
            "SELECT _partition_date, count(*) FROM orders.validated GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert days == [(dt.date.fromisoformat(d), 5) for d in DAYS]


def test_rerun_of_one_partition_adds_a_run_and_keeps_history(
    home, orders_spec, postgres, pg_instance
) -> None:
    job = build_defs([orders_spec]).resolve_job_def("orders__daily_layers")
    first = job.execute_in_process(
        instance=pg_instance, tags={RANGE_START: DAYS[0], RANGE_END: DAYS[-1]}
    )
    second = job.execute_in_process(instance=pg_instance, partition_key=DAYS[1])
    assert first.success and second.success
    runs = pg_rows(postgres, "SELECT run_id, status FROM runs ORDER BY id")
    assert runs == [(first.run_id, "SUCCESS"), (second.run_id, "SUCCESS")]
    by_run = pg_rows(
        postgres,
        "SELECT run_id, partition FROM event_logs WHERE asset_key = %s "
        "AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY id",
        '["orders", "raw"]',
    )
    assert by_run == [(first.run_id, d) for d in DAYS] + [(second.run_id, DAYS[1])]
    latest = pg_instance.get_latest_materialization_event(dg.AssetKey(["orders", "raw"]))
    assert latest is not None and latest.run_id == second.run_id


@pytest.mark.slow  # two `dagster asset materialize` processes, each loading the definitions
def test_partitions_launched_together_share_the_postgres_instance(
    home, orders_spec, postgres, pg_dagster_home
) -> None:
    """Two processes, one partition each, at once: both runs and their events land in the one
    Postgres instance, and the warehouse pool (kept in Postgres too) makes the DuckDB writers take
    turns instead of failing on the file lock."""
    env = {**os.environ, "ML_ASSETS_HOME": str(home), "ML_ASSETS_SPECS": str(home / "specs")}
    # The pool's row is created before the two launches: on a new instance both processes would
    # insert it at once and one fails on Dagster's unique key (seen once in CI), a race of
    # first use that a deployed instance meets only once, not what this test is about.
    with dg.DagsterInstance.from_config(str(pg_dagster_home)) as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb_warehouse")
    dagster = Path(sys.executable).parent / "dagster"
    # Steps in each run's own process (one definitions load per run instead of one per step:
    # 10 s instead of 40 s a run here); the pool applies to in-process steps as well.
    in_process = json.dumps({"execution": {"config": {"in_process": {}}}})
    command = [str(dagster), "asset", "materialize", "-m", "ml_assets.definitions"]
    command += ["--config-json", in_process]
    procs = [
        subprocess.Popen(
            [*command, "--select", "orders/raw", "--partition", day],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in DAYS[:2]
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]
    runs = pg_rows(postgres, "SELECT status FROM runs")
    assert runs == [("SUCCESS",), ("SUCCESS",)]
    mats = pg_rows(
        postgres,
        "SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
        "AND asset_key = %s ORDER BY 1",
        '["orders", "raw"]',
    )
    assert mats == [(d,) for d in DAYS[:2]]
    # The warehouse pool was in force (steps waited for its one slot), its slots kept in the
    # instance's concurrency tables, in Postgres.
    assert any("blocked by limit for pool duckdb_warehouse" in out for out in outputs)
    assert ("duckdb_warehouse",) in pg_rows(
        postgres, "SELECT concurrency_key FROM concurrency_limits"
    )
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        days = conn.execute(
            "SELECT DISTINCT _partition_date::VARCHAR FROM orders.raw ORDER BY 1"
        ).fetchall()
    assert [d for (d,) in days] == DAYS[:2]
