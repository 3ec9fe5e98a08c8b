"""The multi-writer warehouse: DuckLake with its catalog in a real PostgreSQL server and its data
files in a temp folder, behind the same `Warehouse` resource and the layers' own write path
(`rewrite_window`: delete the window, insert, one transaction)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest

from ml_assets.core.sql import rewrite_window
from ml_assets.layers.ingest.files import resolve_source
from ml_assets.layers.ingest.raw import write_raw
from ml_assets.local_postgres import LocalPostgres
from ml_assets.resources import warehouse as wh
from ml_assets.resources.ducklake import WarehouseConflict
from ml_assets.resources.warehouse import Warehouse
from ml_assets_tests.conftest import REPO

TABLE = "lake_test.events"
DAYS = [dt.date(2013, 1, d) for d in range(1, 5)]
ROWS = 500
ROUNDS = 6


def pg_rows(postgres: LocalPostgres, database: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(postgres.dsn(database))
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def ducklake(env: dict[str, str], **kwargs: object) -> Warehouse:
    return Warehouse(
        database=":unused:",
        backend="ducklake",
        ducklake_catalog=env["ML_ASSETS_DUCKLAKE_CATALOG"],
        ducklake_data_path=env["ML_ASSETS_DUCKLAKE_DATA_PATH"],
        **kwargs,
    )


def create_table(warehouse: Warehouse) -> None:
    with warehouse.get_connection() as conn:
        # The layers' DDL shape, PRIMARY KEY included (DuckLake has none; the backend drops it).
        conn.execute(
            "CREATE SCHEMA IF NOT EXISTS lake_test;"
            f"CREATE TABLE IF NOT EXISTS {TABLE} (id VARCHAR PRIMARY KEY, "
            "_partition_date DATE NOT NULL, round INTEGER NOT NULL, i BIGINT NOT NULL)"
        )
        for day in DAYS:  # an earlier version of every partition, for the rewrites to replace
            write_day(conn, day, -1)


def write_day(conn: duckdb.DuckDBPyConnection, day: dt.date, round_: int) -> None:
    """One partition rewrite, as every layer does it."""
    with rewrite_window(conn, [TABLE], day, day):
        conn.execute(
            f"INSERT INTO {TABLE} SELECT $day::VARCHAR || '/' || i, $day, $round, i "
            "FROM range($rows) t(i)",
            {"day": day, "round": round_, "rows": ROWS},
        )


def rows_by_day(warehouse: Warehouse) -> dict[dt.date, tuple[int, int, int, int]]:
    """Per day: rows, distinct ids, lowest and highest round."""
    with warehouse.get_connection() as conn:
        rows = conn.execute(
            f"SELECT _partition_date, count(*), count(DISTINCT id), min(round), max(round) "
            f"FROM {TABLE} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return {d: (n, ids, lo, hi) for d, n, ids, lo, hi in rows}


def test_the_default_is_the_embedded_file_and_its_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(wh.BACKEND_ENV, raising=False)
    assert wh.warehouse_resource("/tmp/x.duckdb").backend == "duckdb"
    assert wh.warehouse_pool() == "duckdb_warehouse"
    monkeypatch.setenv(wh.BACKEND_ENV, "ducklake")
    assert wh.warehouse_resource().backend == "ducklake"
    assert wh.warehouse_pool() is None
    monkeypatch.setenv(wh.BACKEND_ENV, "duckdbb")
    with pytest.raises(ValueError, match="duckdbb"):
        wh.warehouse_pool()


def test_ducklake_steps_are_in_no_pool(ducklake_env, flights_spec) -> None:
    from ml_assets.definitions import build_defs

    graph = build_defs([flights_spec]).resolve_asset_graph()
    pools = {node.key.to_user_string(): node.pools for node in graph.asset_nodes}
    assert pools["flights/raw"] == set() and pools["flights/validated"] == set()
    assert all(not p for p in pools.values()), {k: p for k, p in pools.items() if p}


def test_extensions_load_from_the_wheels_and_nothing_is_installed(
    ducklake_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # where DuckDB would install extensions
    warehouse = ducklake(ducklake_env)
    with warehouse.get_connection() as conn:
        loaded = conn.execute(
            "SELECT extension_name, installed FROM duckdb_extensions() "
            "WHERE extension_name IN ('ducklake', 'postgres_scanner') AND loaded ORDER BY 1"
        ).fetchall()
        settings = conn.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions'), current_database()"
        ).fetchone()
    assert loaded == [("ducklake", False), ("postgres_scanner", False)]
    assert settings == (False, False, "warehouse")
    assert not (tmp_path / "user" / ".duckdb").exists()


def test_a_ducklake_session_spills_into_its_own_process_directory(ducklake_env) -> None:
    """Not the working directory's `.tmp`, which two writer processes shared and one removed
    under the other; a sort over its memory_limit spills there and succeeds."""
    warehouse = ducklake(ducklake_env, memory_limit="64MB")
    with warehouse.get_connection() as conn:
        (spill,) = conn.execute("SELECT current_setting('temp_directory')").fetchone()
        conn.execute("SET threads = 1; SET preserve_insertion_order = false")
        conn.execute(
            "CREATE TEMP TABLE sorted AS SELECT random() AS r, range AS i, "
            "repeat('x', 40) || range AS pad FROM range(3000000) ORDER BY r"
        )
        (n,) = conn.execute("SELECT count(*) FROM sorted").fetchone()
        spilled = conn.execute("SELECT path FROM duckdb_temporary_files()").fetchall()
    assert Path(spill) == wh.spill_directory() and Path(spill).is_absolute()
    assert Path(spill).name == str(os.getpid())
    assert n == 3_000_000 and spilled  # over 64MB: spilled, into that directory
    assert all(Path(p).parent == Path(spill) for (p,) in spilled)


def test_a_conflicting_commit_is_replayed_and_without_retries_it_fails(ducklake_env) -> None:
    """Two sessions rewrite different days of one table, interleaved: the second COMMIT conflicts
    (DuckLake: a concurrent delete from the same table). With retries it is replayed on top of
    the first; with one attempt it fails and its day keeps the old rows."""
    create_table(ducklake(ducklake_env))
    for attempts, day in ((10, DAYS[1]), (1, DAYS[2])):
        a = ducklake(ducklake_env).get_connection()
        b = ducklake(ducklake_env, conflict_attempts=attempts).get_connection()
        with a as first, b as second:
            left = rewrite_window(first, [TABLE], DAYS[0], DAYS[0])
            right = rewrite_window(second, [TABLE], day, day)
            left.__enter__()
            right.__enter__()
            first.execute(
                f"INSERT INTO {TABLE} SELECT 'a' || i, $d, 1, i FROM range(3) t(i)", {"d": DAYS[0]}
            )
            second.execute(
                f"INSERT INTO {TABLE} SELECT 'b' || i, $d, 1, i FROM range(4) t(i)", {"d": day}
            )
            left.__exit__(None, None, None)
            if attempts > 1:
                right.__exit__(None, None, None)
                assert second.conflict_retries == 1
            else:
                with pytest.raises(WarehouseConflict, match="after 1 attempt"):
                    right.__exit__(None, None, None)
                assert second.conflict_retries == 0
    days = rows_by_day(ducklake(ducklake_env))
    assert days[DAYS[0]] == (3, 3, 1, 1)
    assert days[DAYS[1]] == (4, 4, 1, 1)  # replayed: the new rows, the old ones gone
    assert days[DAYS[2]] == (ROWS, ROWS, -1, -1)  # failed: the previous version intact


def rewrite_rounds(env: dict[str, str], day: dt.date, barrier, results) -> None:
    """A writer process: rewrite `day` ROUNDS times, starting each round with the others."""
    os.environ.update(env)
    errors: list[str] = []
    with ducklake(env).get_connection() as conn:
        for round_ in range(ROUNDS):
            barrier.wait(timeout=300)
            try:
                write_day(conn, day, round_)
            except Exception as exc:  # reported to the test, which fails on any
                errors.append(f"{type(exc).__name__}: {exc}")
        results.put((day, conn.conflict_retries, errors))


def test_processes_write_partitions_of_one_table_at_once(ducklake_env) -> None:
    """4 processes, one day each, rewrite their partition of the same table at the same moment,
    6 times: every rewrite lands (conflicts are retried, and there are some), and each day ends
    with exactly the last round's rows: none lost, none duplicated, no other day touched."""
    warehouse = ducklake(ducklake_env)
    create_table(warehouse)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(DAYS)), ctx.Queue()
    procs = [
        ctx.Process(target=rewrite_rounds, args=(ducklake_env, day, barrier, results))
        for day in DAYS
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert {day: errors for day, _, errors in reports} == {day: [] for day in DAYS}
    retried = sum(n for _, n, _ in reports)
    assert retried > 0, "no write conflicted: the test did not exercise concurrent writers"
    assert rows_by_day(warehouse) == {day: (ROWS, ROWS, ROUNDS - 1, ROUNDS - 1) for day in DAYS}


@pytest.mark.slow  # two runs at once, every step a process of its own
def test_partitions_of_flights_materialize_at_once_on_ducklake(
    home, flights_spec, postgres, pg_instance, ducklake_env
) -> None:
    """Two Dagster runs, one flights day each, launched together on the Postgres instance with
    the multiprocess executor: raw and validated/quarantine of both days land in the one
    DuckLake, row for row what the source holds for those days, with their checks passed and
    no step queued on a warehouse pool."""
    days = ["2013-01-02", "2013-01-03"]
    # Extracted once before the runs: the zip cache's extraction is not safe for two processes
    # writing it at once (both rename the same `.part` file).
    source = resolve_source(flights_spec.source)
    # The dataset's first raw write registers its bundled file in `flights.source_files`, whose
    # uniqueness the embedded file enforces with a PRIMARY KEY that DuckLake does not have: two
    # first writes at once both register it, and raw's `source_rows_accounted` check then fails
    # (it did, here). So one day is ingested before the parallel runs, as a first run would.
    with ducklake(ducklake_env).get_connection() as conn:
        now = dt.datetime.now(dt.UTC)
        write_raw(conn, flights_spec, DAYS[0], DAYS[0], run_id="first", ingested_at=now)
    env = {**os.environ, **ducklake_env}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ml_assets_tests.scaleout.ducklake_job", day],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in days
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    run_ids = []
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-3000:]
        launched = json.loads(out.strip().splitlines()[-1])
        assert launched["success"], out[-3000:]
        run_ids.append(launched["run_id"])

    statuses = pg_rows(postgres, os.environ["DAGSTER_PG_DB"], "SELECT status FROM runs")
    assert statuses == [("SUCCESS",), ("SUCCESS",)]
    # Every check of both runs evaluated and passed (blocking checks: a failure fails the run).
    evaluations = sorted(
        (record.event_log_entry.dagster_event.event_specific_data.check_name, passed)
        for run_id in run_ids
        for record in pg_instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        for passed in [record.event_log_entry.dagster_event.event_specific_data.passed]
    )
    assert evaluations == [("row_conservation", True)] * 2 + [("source_rows_accounted", True)] * 2
    # No step waited for a pool slot: none was ever created.
    assert (
        pg_rows(
            postgres, os.environ["DAGSTER_PG_DB"], "SELECT concurrency_key FROM concurrency_limits"
        )
        == []
    )

    # The expected rows per day, straight from the bundled CSV.
    with duckdb.connect() as conn:
        expected = dict(
            conn.execute(
                "SELECT make_date(year, month, day)::VARCHAR, count(*) FROM read_csv($p) "
                "WHERE make_date(year, month, day)::VARCHAR IN ($a, $b) GROUP BY 1",
                {"p": str(source[0].readable_path), "a": days[0], "b": days[1]},
            ).fetchall()
        )
    with ducklake(ducklake_env).get_connection() as conn:
        raw = conn.execute(
            "SELECT _partition_date::VARCHAR, count(*), count(DISTINCT _source_row) "
            "FROM flights.raw WHERE _partition_date > $first GROUP BY 1 ORDER BY 1",
            {"first": DAYS[0]},
        ).fetchall()
        split = conn.execute(
            "SELECT d, sum(n) FROM (SELECT _partition_date::VARCHAR d, count(*) n "
            "FROM flights.validated GROUP BY 1 UNION ALL SELECT _partition_date::VARCHAR, "
            "count(*) FROM flights.quarantine GROUP BY 1) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        registered = conn.execute("SELECT count(*) FROM flights.source_files").fetchone()
    assert registered == (1,)
    assert raw == [(day, expected[day], expected[day]) for day in days]
    assert split == [(day, expected[day]) for day in days]
