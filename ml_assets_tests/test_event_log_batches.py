"""The SQLite event log's batches write what Dagster's per-event path writes, and range runs use
them: real runs on real sqlite instances, every table of every shard file compared row by row.

The events come from real runs of a small daily multi-asset with two partitioned checks that
report every day of a range (`core.checks.record_days`), an observation and a one-day run. They
are then stored again into fresh storages: one event at a time through Dagster's own
`store_event`, and through `store_event_batch` in batches that cut across event kinds.
"""

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from ml_assets import event_log_batches
from ml_assets.core.checks import DayResult, daily_check_spec, record_days, window_days
from ml_assets.core.event_buffer import buffered_events
from ml_assets.core.partitions import daily_partitions, window
from ml_assets.core.spec import load_spec
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets_tests.conftest import FLIGHTS_SPEC

SPEC = load_spec(FLIGHTS_SPEC)
KEY = dg.AssetKey(["batches", "numbers"])
# Columns SQLite fills with the time of the insert: they differ between any two writes.
INSERT_TIMES = {"create_timestamp", "update_timestamp", "migration_completed"}

event_log_batches.install()


@dg.multi_asset(
    specs=[dg.AssetSpec(KEY, partitions_def=daily_partitions(SPEC))],
    check_specs=[
        daily_check_spec(SPEC, "even", asset=KEY),
        daily_check_spec(SPEC, "small", asset=KEY),
    ],
    partitions_def=daily_partitions(SPEC),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def numbers(
    context: dg.AssetExecutionContext,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    start, end = window(context)
    yield dg.MaterializeResult(asset_key=KEY, metadata={"window": f"{start}..{end}", "rows": 3})
    context.log_event(dg.AssetObservation(asset_key=KEY, metadata={"seen": 1}))
    for name, passes in (("even", lambda d: d.day % 2 == 0), ("small", lambda d: d.day < 20)):
        days = [
            DayResult(d, passes(d), observed=d.day, threshold=20) for d in window_days(start, end)
        ]
        yield dg.AssetCheckResult(
            check_name=name,
            passed=all(d.passed for d in days),
            severity=dg.AssetCheckSeverity.WARN,
            metadata=record_days(
                context,
                days,
                {"n": len(days)},
                severity=dg.AssetCheckSeverity.WARN,
                check_name=name,
            ),
        )


def run_range(instance: dg.DagsterInstance, start: str, end: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([numbers], instance=instance, tags={RANGE_START: start, RANGE_END: end})


@pytest.fixture(scope="module")
def source_events(tmp_path_factory: pytest.TempPathFactory) -> list[EventLogEntry]:
    """Every event of three real runs (two ranges, one day), in the order they were stored."""
    home = tmp_path_factory.mktemp("source")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        runs = [
            run_range(instance, "2013-01-01", "2013-01-12"),
            run_range(instance, "2013-01-10", "2013-01-24"),
            dg.materialize([numbers], instance=instance, partition_key="2013-01-05"),
        ]
        assert all(r.success for r in runs)
        return [
            record.event_log_entry
            for r in runs
            for record in instance.get_records_for_run(r.run_id).records
        ]


def tables(base_dir: Path) -> dict[str, list[tuple]]:
    """Every row of every table of every shard file, insert times left out."""
    out = {}
    for db in sorted(base_dir.glob("*.db")):
        with sqlite3.connect(db) as conn:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in names:
                columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
                kept = ", ".join(f'"{c}"' for c in columns if c not in INSERT_TIMES)
                out[f"{db.name}:{table}"] = conn.execute(
                    f'SELECT {kept} FROM "{table}" ORDER BY rowid'
                ).fetchall()
    return out


def store_one_by_one(base_dir: Path, events: list[EventLogEntry]) -> dict[str, list[tuple]]:
    storage = SqliteEventLogStorage(str(base_dir))
    for event in events:
        storage.store_event(event)
    storage.dispose()
    return tables(base_dir)


def store_in_batches(base_dir: Path, events: list[EventLogEntry], size: int) -> dict:
    storage = SqliteEventLogStorage(str(base_dir))
    for i in range(0, len(events), size):
        storage.store_event_batch(events[i : i + size])
    storage.dispose()
    return tables(base_dir)


def test_batches_write_every_row_dagster_writes(
    source_events: list[EventLogEntry], tmp_path: Path
) -> None:
    kinds = {e.dagster_event_type for e in source_events if e.dagster_event}
    assert {
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_OBSERVATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.RUN_SUCCESS,
    } <= kinds
    # Without one run's planned check rows, its evaluations have no row to resolve: inserted.
    unplanned = next(
        e
        for e in source_events
        if e.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    )
    events = [e for e in source_events if e is not unplanned]

    expected = store_one_by_one(tmp_path / "one_by_one", events)
    assert len(expected["index.db:asset_check_executions"]) >= 2 * (12 + 15)
    for size in (7, 1000):  # batches cutting across kinds, and everything in one
        assert store_in_batches(tmp_path / f"batches_{size}", events, size) == expected


def test_a_failed_batch_leaves_nothing_behind(
    source_events: list[EventLogEntry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rolled back whole in every shard, so the per-event retry (Dagster's, or the buffer's)
    writes each event once."""
    SqliteEventLogStorage(str(tmp_path / "fresh")).dispose()
    fresh = tables(tmp_path / "fresh")

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(event_log_batches, "update_check_evaluations", broken)
    storage = SqliteEventLogStorage(str(tmp_path / "failed"))
    with pytest.raises(RuntimeError, match="disk full"):
        storage.store_event_batch(source_events)
    storage.dispose()
    after = tables(tmp_path / "failed")
    assert {k: v for k, v in after.items() if k.startswith("index.db:")} == fresh
    run_logs = [k for k in after if k.endswith(":event_logs") and not k.startswith("index.db:")]
    assert run_logs and all(after[k] == [] for k in run_logs)


def test_a_failed_buffered_batch_is_stored_one_by_one(
    source_events: list[EventLogEntry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = store_one_by_one(tmp_path / "one_by_one", source_events)

    def broken(self: object, events: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(SqliteEventLogStorage, "store_event_batch", broken)
    (tmp_path / "buffered").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "buffered")) as instance:
        storage = instance.event_log_storage
        with buffered_events(instance):
            for event in source_events:
                storage.store_event(event)
            # Held until the block ends.
            assert not storage.get_records_for_run(source_events[0].run_id).records
        base_dir = Path(storage._base_dir)
    assert tables(base_dir) == expected


def test_a_range_runs_connections_do_not_grow_with_its_days(tmp_path: Path) -> None:
    """Every event of a range used to open its own connections (3-5); now each batch opens one
    per shard: a range of 30 days opens no more connections than one of 6."""
    opened: list[str] = []

    def count(conn: sqlalchemy.engine.Connection) -> None:
        opened.append(str(conn.engine.url))

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "engine_connect", count)
    try:
        per_range = []
        for days in (6, 30):
            (tmp_path / f"d{days}").mkdir()
            with dg.instance_for_test(temp_dir=str(tmp_path / f"d{days}")) as instance:
                start = dt.date(2013, 3, 1)
                end = start + dt.timedelta(days=days - 1)
                before = len(opened)
                assert run_range(instance, start.isoformat(), end.isoformat()).success
                per_range.append(len(opened) - before)
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "engine_connect", count)
    short, long = per_range
    assert long <= short + 5, per_range
