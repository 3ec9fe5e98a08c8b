"""No source row is lost: each ends in raw (then validated or quarantine) or in `rejected_rows`
with its reason, on every path into raw, and `raw:source_rows_accounted` proves it per file.

Real Dagster runs of the daily layers on a real DuckDB file: the bundled-source backfill, the
landing sensor's run, and the check going red when the code loses rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import LANDING_FILE_TAG, RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets.layers.ingest import raw as raw_module
from ml_assets_tests.conftest import orders_rows, write_csv, write_orders_spec

D1, D2, D3 = (dt.date(2024, 1, d) for d in (1, 2, 3))
CHECK = "orders/raw:source_rows_accounted"

# Rows no partition of 2024-01-01..03 can take, each with the reason it must carry. The second is
# the case: the last evening in New York is already the next day in UTC.
UNPLACEABLE = {
    "901,2023-12-31T23:30:00Z,c1,5,paid,2": (
        "outside_partitions: 2023-12-31 23:30:00 UTC not in [2024-01-01, 2024-01-03]"
    ),
    "902,2024-01-03T20:00:00-05:00,c1,5,paid,2": (
        "outside_partitions: 2024-01-04 01:00:00 UTC not in [2024-01-01, 2024-01-03]"
    ),
    "903,,c1,5,paid,2": "no_event_time",
    "904,yesterday,c1,5,paid,2": "unparseable_event_time: yesterday",
}


def with_unplaceable(lines: list[str]) -> list[str]:
    """`lines` with the unplaceable rows spread through the file (first, middle, last)."""
    bad = list(UNPLACEABLE)
    mid = len(lines) // 2
    return [bad[0], *lines[:mid], bad[1], bad[2], *lines[mid:], bad[3]]


def run(defs: dg.Definitions, instance: dg.DagsterInstance, start: dt.date, end: dt.date, **kw):
    job = defs.resolve_job_def("orders__daily_layers")
    tags = {RANGE_START: start.isoformat(), RANGE_END: end.isoformat(), **kw.pop("tags", {})}
    return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, **kw)


def check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (ev,) = [
        e
        for e in result.get_asset_check_evaluations()
        if f"{e.asset_key.to_user_string()}:{e.check_name}" == CHECK
    ]
    return ev


def query(sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def file_rows(path: Path) -> int:
    return len(path.read_text().splitlines()) - 1  # the header


def ledger(checksum_of: str) -> dict[str, int]:
    """Rows of the source file whose name ends with `checksum_of`: in raw, rejected, validated,
    quarantined."""
    (checksum,) = query(
        "SELECT checksum FROM orders.source_files WHERE path LIKE '%' || ?", [checksum_of]
    )[0]

    def n(table: str) -> int:
        sql = f"SELECT count(*) FROM orders.{table} WHERE _source_checksum = ?"
        return query(sql, [checksum])[0][0]

    return {t: n(t) for t in ("raw", "rejected_rows", "validated", "quarantine")}


def rejected_reasons(name: str) -> dict[str, str]:
    rows = query(
        """SELECT order_id, _reason FROM orders.rejected_rows
           WHERE _source_file LIKE '%' || ? ORDER BY _source_row""",
        [name],
    )
    return {oid: reason for oid, reason in rows}


@pytest.fixture
def orders_3_days(home: Path) -> DatasetSpec:
    """orders over 2024-01-01..03 exactly, its bundled CSV 15 clean rows plus the unplaceable."""
    lines = []
    for k, day in enumerate((D1, D2, D3)):
        lines += orders_rows(day, 5, start_id=1 + 5 * k)
    write_csv(home / "data" / "orders" / "base.csv", with_unplaceable(lines))
    return write_orders_spec(home, end=D3.isoformat())


def test_source_backfill_rejects_unplaceable_rows_with_their_reason(
    home, orders_3_days, instance
) -> None:
    defs = build_defs([orders_3_days])
    source = home / "data" / "orders" / "base.csv"
    expected = {line.split(",")[0]: reason for line, reason in UNPLACEABLE.items()}

    # A partial backfill first: the rows of days not yet written are waiting, not missing.
    first = run(defs, instance, D1, D1)
    assert first.success
    accounted = check(first)
    assert accounted.passed, accounted.metadata["files_not_accounted"].value
    assert accounted.metadata["waiting_rows"].value == 10
    assert accounted.metadata["rejected_rows"].value == 4

    # Then the whole range, twice: the rerun rewrites the rejections, it does not add to them.
    for _ in range(2):
        result = run(defs, instance, D1, D3)
        assert result.success
        accounted = check(result)
        assert accounted.passed, accounted.metadata["files_not_accounted"].value
        counts = ledger("base.csv")
        assert counts["raw"] + counts["rejected_rows"] == file_rows(source) == 19
        assert counts["validated"] + counts["quarantine"] == counts["raw"] == 15
        assert rejected_reasons("base.csv") == expected

    meta = accounted.metadata
    assert (meta["source_rows"].value, meta["raw_rows"].value) == (19, 15)
    assert (meta["waiting_rows"].value, meta["unaccounted_rows"].value) == (0, 0)
    assert meta["rejected_by_reason"].value == {
        "no_event_time": 1,
        "outside_partitions": 2,
        "unparseable_event_time": 1,
    }
    assert "4 rejected" in meta["summary"].value
    raw_mat = next(
        m.materialization
        for m in result.get_asset_materialization_events()
        if m.materialization.asset_key.path[-1] == "raw"
    )
    assert raw_mat.metadata["rejected_rows"].value == 4
    # A rejected row keeps every column as read, and where it came from.
    kept = query(
        """SELECT ordered_at, amount, _source_row, _event_time FROM orders.rejected_rows
           WHERE order_id = '902'"""
    )
    assert kept == [("2024-01-03T20:00:00-05:00", "5", 9, dt.datetime(2024, 1, 4, 1))]


def test_landing_sensor_run_rejects_unplaceable_rows_with_their_reason(
    home, orders_3_days, instance
) -> None:
    defs = build_defs([orders_3_days])
    assert run(defs, instance, D1, D3).success
    landing = settings.landing_dir("orders")
    placeable = orders_rows(D2, 2, start_id=200) + orders_rows(D3, 3, start_id=300)
    drop = write_csv(landing / "drop.csv", with_unplaceable(placeable))
    hopeless = write_csv(landing / "hopeless.csv", list(UNPLACEABLE)[:2])

    sensor = defs.resolve_sensor_def("orders__landing")
    tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    (request,) = tick.run_requests
    # The run covers the days the placeable rows fall on, not the file's whole span.
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (D2.isoformat(), D3.isoformat())
    # A file no partition can take is a clear error: moved aside with its reason.
    assert not hopeless.exists() and drop.exists()
    reason = (landing / "_rejected" / "hopeless.csv.reason.txt").read_text()
    assert "outside the partitions 2024-01-01..2024-01-03" in reason

    result = defs.resolve_job_def("orders__daily_layers").execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags
    )
    assert result.success
    accounted = check(result)
    assert accounted.passed, accounted.metadata["files_not_accounted"].value
    counts = ledger("drop.csv")
    assert counts["raw"] + counts["rejected_rows"] == file_rows(drop) == 9
    assert counts["validated"] + counts["quarantine"] == counts["raw"] == 5
    assert rejected_reasons("drop.csv") == {
        line.split(",")[0]: reason for line, reason in UNPLACEABLE.items()
    }
    # Both files: the bundled one and the drop, each accounted for on its own.
    files = {f["file"].rsplit("/", 1)[-1]: f for f in accounted.metadata["files"].value}
    assert {name: (f["rows_in_file"], f["in_raw"], f["rejected"]) for name, f in files.items()} == {
        "base.csv": (19, 15, 4),
        "drop.csv": (9, 5, 4),
    }

    # Rebuilding a day later (the drop is gone; its archived copy is read) keeps one rejection each.
    drop.unlink()
    assert run(defs, instance, D3, D3).success
    assert len(rejected_reasons("drop.csv")) == 4


def _lose_rejections(real):
    def render(path: Path, **fragments: str) -> str:
        if path.name == "rejected_insert.sql":  # bind the same parameters, insert nothing
            return "SELECT $source_file, $checksum, $ingested_at, $run_id WHERE false"
        return real(path, **fragments)

    return render


def _lose_a_raw_row(real):
    def render(path: Path, **fragments: str) -> str:
        sql = real(path, **fragments)
        return sql + " AND _source_row <> 3" if path.name == "raw_insert.sql" else sql

    return render


@pytest.mark.parametrize(
    ("breakage", "off"),
    [(_lose_rejections, "unaccounted_rows"), (_lose_a_raw_row, "raw_rows_off")],
)
def test_the_check_blocks_a_run_that_loses_rows(
    home, orders_3_days, instance, monkeypatch, breakage, off
) -> None:
    monkeypatch.setattr(raw_module, "render", breakage(raw_module.render))
    result = run(build_defs([orders_3_days]), instance, D1, D3)
    accounted = check(result)
    assert not accounted.passed and accounted.severity == dg.AssetCheckSeverity.ERROR
    assert accounted.metadata[off].value != 0
    assert accounted.metadata["files_not_accounted"].value[0]["file"].endswith("base.csv")
    # Blocking: nothing downstream is built on a window that lost rows.
    assert not result.success
    assert not [
        m
        for m in result.get_asset_materialization_events()
        if m.materialization.asset_key.path[-1] == "validated"
    ]


def test_landing_days_stop_at_the_newest_partition(home, orders_spec, instance) -> None:
    """Rows on a day whose partition does not exist yet wait for it (the day's own run reads the
    registered file); the sensor's run covers only days that exist, and a file with nothing but
    such rows waits in the folder instead of being rejected."""
    spec = write_orders_spec(home, end="2099-12-31")
    defs = build_defs([spec])
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    landing = settings.landing_dir("orders")
    write_csv(landing / "a.csv", orders_rows(yesterday, 2, 10) + orders_rows(today, 2, 20))
    write_csv(landing / "b.csv", orders_rows(today, 2, 30))

    sensor = defs.resolve_sensor_def("orders__landing")
    tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    (request,) = tick.run_requests
    assert request.tags[LANDING_FILE_TAG] == "a.csv"
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (yesterday.isoformat(),) * 2
    assert (landing / "b.csv").exists() and not (landing / "_rejected").exists()
