"""The raw layer of a dataset whose source is a Kafka topic: days rebuilt from the stream ledger.

The stream sensor appends each polled batch to `<ds>.stream_rows` / `<ds>.stream_quarantine`
exactly once (`ml_assets.streaming.ledger`); a raw run then rewrites its window from the ledger's
rows of those days, in one transaction, like a file-backed run. A late message already sits in
the ledger under its own event-time day, so rebuilding that day picks it up; the ledger never
forgets a message, so a rebuild gives the same rows. Lineage: `_source_file` is
`kafka://<topic>/<partition>`, `_source_checksum` `kafka:<topic>:<partition>`, `_source_row` the
offset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import ident, render, rewrite_window
from ml_assets.streaming import ledger
from ml_assets.streaming.target import stream_target

SQL = Path(__file__).parent / "sql"


def _ledger_tables(spec: DatasetSpec) -> dict[str, str]:
    target = stream_target(spec)
    return {
        "stream_rows_table": target.table("stream_rows"),
        "stream_quarantine_table": target.table("stream_quarantine"),
        "stream_offsets_table": target.table("stream_offsets"),
    }


def write_stream_raw(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date,
    end: dt.date,
    *,
    run_id: str,
) -> tuple[dict[dt.date, int], list[dict], dict[str, int]]:
    """Replace raw partitions [start, end] with the ledger's rows of those days. Returns rows
    per day, the topic partitions read (as "files") and the quarantined messages by reason."""
    ledger.ensure_tables(conn, stream_target(spec))
    tables = _ledger_tables(spec)
    raw_table = spec.names.table("raw")
    columns = ", ".join(ident(c) for c in spec.columns)
    with rewrite_window(conn, [raw_table], start, end):
        conn.execute(
            render(
                SQL / "stream_raw_insert.sql",
                raw_table=raw_table,
                raw_columns=columns,
                stream_rows_table=tables["stream_rows_table"],
            ),
            {"start": start, "end": end, "run_id": run_id},
        )
    counts = conn.execute(
        render(SQL / "raw_counts.sql", raw_table=raw_table), {"start": start, "end": end}
    ).fetchall()
    parts = conn.execute(
        f"""SELECT _source_file, _source_checksum, count(*), min(_source_row), max(_source_row)
            FROM {raw_table} WHERE _partition_date BETWEEN $start AND $end
            GROUP BY ALL ORDER BY ALL""",
        {"start": start, "end": end},
    ).fetchall()
    reasons = conn.execute(
        f"""SELECT split_part(_reason, ':', 1), count(*) FROM {tables["stream_quarantine_table"]}
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    files = [
        {"file": f, "checksum": c, "kind": "kafka", "rows": n, "offsets": [lo, hi]}
        for f, c, n, lo, hi in parts
    ]
    return {d: n for d, n in counts}, files, dict(reasons)


@dataclass(frozen=True)
class StreamAccount:
    """Where one topic partition's consumed messages are (see `sql/stream_accounts.sql`)."""

    topic: str
    partition: int
    rows: int
    quarantined: int
    in_both: int
    next_offset: int | None
    past_position: int
    missing_from_raw: int
    extra_in_raw: int
    duplicated_in_raw: int
    days_off: list[str] = field(default_factory=list)

    @property
    def accounted(self) -> bool:
        return (
            self.next_offset is not None
            and self.in_both == 0
            and self.past_position == 0
            and self.missing_from_raw == 0
            and self.extra_in_raw == 0
            and self.duplicated_in_raw == 0
        )

    def as_metadata(self) -> dict[str, object]:
        return {
            "file": f"kafka://{self.topic}/{self.partition}",
            "kind": "kafka",
            "messages": self.rows + self.quarantined,
            "rows": self.rows,
            "quarantined": self.quarantined,
            "stored_next_offset": self.next_offset,
            "offsets_in_rows_and_quarantine": self.in_both,
            "offsets_past_stored_position": self.past_position,
            "ledger_rows_missing_from_raw": self.missing_from_raw,
            "raw_rows_not_in_ledger": self.extra_in_raw,
            "offsets_in_raw_more_than_once": self.duplicated_in_raw,
            "days_off": self.days_off[:10],
        }


def stream_accounts(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date | None, end: dt.date | None
) -> tuple[list[StreamAccount], dict[str, int]]:
    """Every consumed topic partition, accounted for, raw judged on [start, end] (every day
    without a window); and the quarantined messages by reason."""
    ledger.ensure_tables(conn, stream_target(spec))
    tables = _ledger_tables(spec)
    rows = conn.execute(
        render(SQL / "stream_accounts.sql", raw_table=spec.names.table("raw"), **tables),
        {"start": start or dt.date.min, "end": end or dt.date.max},
    ).fetchall()
    reasons = conn.execute(
        f"""SELECT split_part(_reason, ':', 1), count(*) FROM {tables["stream_quarantine_table"]}
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    return [StreamAccount(*r) for r in rows], dict(reasons)
