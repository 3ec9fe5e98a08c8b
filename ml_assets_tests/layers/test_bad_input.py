"""The bad-input corpus: each malformed input ends in a clear error or in quarantine with a reason.

Never a silent drop, never a half-written partition. Runs the real raw and validate logic on a
real DuckDB file.
"""

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.ingest import raw as raw_module
from ml_assets.layers.ingest.files import SourceError
from ml_assets.layers.ingest.raw import write_raw
from ml_assets.layers.validate.logic import write_validated
from ml_assets_tests.conftest import ORDERS_HEADER, orders_rows, write_csv

D1, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 3)
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def ingest(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    landing: list[Path],
    start=D1,
    end=D3,
    ingested_at=NOW,
) -> dict[str, list[str]]:
    """raw + validate for the window; returns {order_id: reasons} of quarantined rows."""
    write_raw(conn, spec, start, end, run_id="test", ingested_at=ingested_at, landing=landing)
    days = write_validated(conn, spec, start, end, run_id="test", validated_at=ingested_at)
    assert all(d.conserved for d in days)
    rows = conn.execute(
        "SELECT order_id, _reasons FROM orders.quarantine ORDER BY order_id"
    ).fetchall()
    return {oid: reasons for oid, reasons in rows}


def counts(conn: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    return tuple(
        conn.execute(f"SELECT count(*) FROM orders.{t}").fetchone()[0]
        for t in ("raw", "validated", "quarantine")
    )


def drop(home: Path, name: str, lines: list[str], header: str = ORDERS_HEADER) -> Path:
    return write_csv(home / "drops" / name, lines, header)


BAD_ROWS = {
    # (row, expected reason)
    "wrong type": ("101,2024-01-02T10:00:00Z,c1,abc,paid,2", "type:amount"),
    "integer with fraction": ("1.5,2024-01-02T10:00:00Z,c1,5,paid,2", "type:order_id"),
    "null key": (",2024-01-02T10:00:00Z,c1,5,paid,2", "null:order_id"),
    "out of range": ("102,2024-01-02T10:00:00Z,c1,99999,paid,2", "range:amount"),
    "negative out of range": ("103,2024-01-02T10:00:00Z,c1,-1,paid,2", "range:amount"),
    "unknown categorical": ("104,2024-01-02T10:00:00Z,c1,5,lost,2", "allowed:status"),
    "NaN": ("105,2024-01-02T10:00:00Z,c1,NaN,paid,2", "not_finite:amount"),
    "inf": ("106,2024-01-02T10:00:00Z,c1,inf,paid,2", "not_finite:amount"),
    "missing time zone": ("107,2024-01-02T10:00:00,c1,5,paid,2", "tz_missing:ordered_at"),
    "null required text": ("108,2024-01-02T10:00:00Z,,5,paid,2", "null:customer"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_rows_are_quarantined_with_a_reason(orders_spec, warehouse, home, case) -> None:
    row, reason = BAD_ROWS[case]
    landing = drop(home, "bad.csv", [*orders_rows(dt.date(2024, 1, 2), 2, start_id=500), row])
    quarantined = ingest(warehouse, orders_spec, [landing])
    raw, valid, quarantine = counts(warehouse)
    assert raw == 15 + 3 and valid + quarantine == raw
    assert quarantine == 1, quarantined
    (reasons,) = quarantined.values()
    assert reason in reasons
    # Quarantine keeps every column as read.
    kept = warehouse.execute(
        "SELECT amount, status, _source_file FROM orders.quarantine"
    ).fetchone()
    assert kept[2].endswith("bad.csv")


def test_duplicate_keys_keep_the_first_and_quarantine_the_rest(
    orders_spec, warehouse, home
) -> None:
    dup = orders_rows(dt.date(2024, 1, 2), 1, start_id=7)  # id 7 already in base.csv on 01-02
    quarantined = ingest(warehouse, orders_spec, [drop(home, "dup.csv", dup)])
    assert quarantined == {"7": ["duplicate_key"]}
    assert warehouse.execute(
        "SELECT count(*) FROM orders.validated WHERE order_id = 7"
    ).fetchone() == (1,)


def test_future_timestamps_are_quarantined(orders_spec, warehouse, home) -> None:
    # Ingested "on" 2024-01-02 at noon: a row stamped the next evening cannot have happened yet.
    row = "300,2024-01-03T20:00:00Z,c1,5,paid,2"
    quarantined = ingest(
        warehouse,
        orders_spec,
        [drop(home, "future.csv", [row])],
        ingested_at=dt.datetime(2024, 1, 2, 12, tzinfo=dt.UTC),
    )
    assert quarantined["300"] == ["future_event_time"]


def test_mixed_offsets_are_normalized_to_the_spec_zone(orders_spec, warehouse, home) -> None:
    rows = [
        "400,2024-01-02T23:30:00-02:00,c1,5,paid,2",
        "401,2024-01-02T01:00:00+02:00,c1,5,paid,2",
    ]
    assert ingest(warehouse, orders_spec, [drop(home, "tz.csv", rows)]) == {}
    days = dict(
        warehouse.execute(
            "SELECT order_id, _partition_date FROM orders.validated WHERE order_id >= 400"
        ).fetchall()
    )
    # 23:30 at -02:00 is 01:30 UTC the next day; 01:00 at +02:00 is 23:00 UTC the day before.
    assert days == {400: dt.date(2024, 1, 3), 401: dt.date(2024, 1, 1)}


FILE_ERRORS = {
    "missing column": (
        lambda home: drop(
            home,
            "m.csv",
            ["1,2024-01-02T10:00:00Z,c1,5,paid"],
            header="order_id,ordered_at,customer,amount,status",
        ),
        "missing contract columns ['delivery_days']",
    ),
    "renamed column": (
        lambda home: drop(
            home,
            "r.csv",
            ["1,2024-01-02T10:00:00Z,c1,5,paid,2"],
            header="id,ordered_at,customer,amount,status,delivery_days",
        ),
        "missing contract columns ['order_id']",
    ),
    "wrong delimiter": (
        lambda home: drop(
            home,
            "d.csv",
            ["1;2024-01-02T10:00:00Z;c1;5;paid;2"],
            header=ORDERS_HEADER.replace(",", ";"),
        ),
        "is its delimiter something other than ','",
    ),
    "empty file": (lambda home: _bytes(home, "e.csv", b""), "file is empty"),
    "header only": (lambda home: drop(home, "h.csv", []), "header but no rows"),
    "truncated csv": (
        lambda home: _bytes(
            home,
            "t.csv",
            (ORDERS_HEADER + "\n1,2024-01-02T10:00:00Z,c1,5,paid,2\n2,2024-01-02T1").encode(),
        ),
        "could not read as csv",
    ),
    "corrupt parquet": (
        lambda home: _bytes(home, "c.parquet", b"PAR1\x00\x01garbage-not-parquet"),
        "could not read as parquet",
    ),
    "no event time": (
        lambda home: drop(home, "n.csv", ["1,not-a-time,c1,5,paid,2"]),
        "have no valid event time",
    ),
    "outside partitions": (
        lambda home: drop(home, "o.csv", ["1,2031-05-01T10:00:00Z,c1,5,paid,2"]),
        "outside the partitions",
    ),
}


def _bytes(home: Path, name: str, data: bytes) -> Path:
    path = home / "drops" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(FILE_ERRORS))
def test_unusable_files_fail_clearly_and_change_nothing(orders_spec, warehouse, home, case) -> None:
    ingest(warehouse, orders_spec, [])
    before = counts(warehouse)
    make, message = FILE_ERRORS[case]
    bad = make(home)
    with pytest.raises(SourceError) as err:
        write_raw(warehouse, orders_spec, D1, D3, run_id="bad", ingested_at=NOW, landing=[bad])
    assert message in str(err.value)
    assert bad.name in str(err.value)
    assert counts(warehouse) == before
    registered = warehouse.execute("SELECT count(*) FROM orders.source_files").fetchone()[0]
    assert registered == 1  # only the bundled file


def test_extra_columns_are_ignored_and_recorded(orders_spec, warehouse, home) -> None:
    extra = drop(
        home,
        "x.csv",
        ["900,2024-01-02T10:00:00Z,c1,5,paid,2,blue"],
        header=ORDERS_HEADER + ",colour",
    )
    assert ingest(warehouse, orders_spec, [extra]) == {}
    recorded = warehouse.execute(
        "SELECT extra_columns FROM orders.source_files WHERE kind = 'landing'"
    ).fetchone()[0]
    assert recorded == ["colour"]


def test_parquet_landing_files_work(orders_spec, warehouse, home) -> None:
    pq = home / "drops" / "p.parquet"
    pq.parent.mkdir(parents=True, exist_ok=True)
    duckdb.execute(
        f"""COPY (SELECT 950::BIGINT AS order_id, TIMESTAMPTZ '2024-01-02 10:00:00+00' AS ordered_at,
                  'c1' AS customer, 'oops' AS amount, 'paid' AS status, 3.0 AS delivery_days)
            TO '{pq}' (FORMAT parquet)"""
    )
    assert ingest(warehouse, orders_spec, [pq]) == {"950": ["type:amount"]}


def test_the_same_file_twice_is_ingested_once(orders_spec, warehouse, home) -> None:
    rows = orders_rows(dt.date(2024, 1, 2), 3, start_id=600)
    first = drop(home, "a.csv", rows)
    second = drop(home, "copy-of-a.csv", rows)  # same bytes, other name
    ingest(warehouse, orders_spec, [first])
    after_first = counts(warehouse)
    ingest(warehouse, orders_spec, [second])
    ingest(warehouse, orders_spec, [first])
    assert counts(warehouse) == after_first == (18, 18, 0)


def test_a_failure_mid_write_leaves_the_previous_partition(
    orders_spec, warehouse, home, monkeypatch
) -> None:
    ingest(
        warehouse,
        orders_spec,
        [drop(home, "ok.csv", orders_rows(dt.date(2024, 1, 2), 2, start_id=700))],
    )
    before = warehouse.execute("SELECT * FROM orders.raw ORDER BY ALL").fetchall()
    real = raw_module.reader_sql
    calls = []

    def failing_reader(file, source):  # the second file's INSERT hits a real DuckDB error
        calls.append(file)
        return real(file, source) if len(calls) == 1 else "SELECT * FROM no_such_table"

    monkeypatch.setattr(raw_module, "reader_sql", failing_reader)
    with pytest.raises(duckdb.Error):
        write_raw(warehouse, orders_spec, D1, D3, run_id="x", ingested_at=NOW)
    assert warehouse.execute("SELECT * FROM orders.raw ORDER BY ALL").fetchall() == before


def test_registered_landing_rows_survive_a_rebuild(orders_spec, warehouse, home) -> None:
    landed = drop(home, "late.csv", orders_rows(dt.date(2024, 1, 3), 4, start_id=800))
    ingest(warehouse, orders_spec, [landed])
    landed.unlink()  # the drop is gone; the archived copy rebuilds the partition
    ingest(warehouse, orders_spec, [], start=dt.date(2024, 1, 3), end=D3)
    assert counts(warehouse) == (19, 19, 0)
