"""The request log into the warehouse: a window of days replaced from the log's files, and the
per-day online summary. Plain functions over a DuckDB connection; the assets only wire them."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import render, transaction
from ml_assets.layers.requests.log import day_files

SQL = Path(__file__).parent / "sql"

# The logged record's fields as the table types them (`fields` is the request row, as JSON text).
COLUMNS = pa.schema(
    [
        ("_partition_date", pa.date32()),
        ("request_id", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("_key", pa.string()),
        ("_event_time", pa.timestamp("us")),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("served_by", pa.string()),
        ("canary_fallback", pa.bool_()),
        ("fields", pa.string()),
        ("score", pa.float64()),
        ("decision", pa.bool_()),
        ("decision_threshold", pa.float64()),
        ("latency_ms", pa.float64()),
        ("request_rows", pa.int64()),
        ("shadow_model_version", pa.string()),
        ("shadow_score", pa.float64()),
        ("shadow_decision", pa.bool_()),
        ("shadow_agree", pa.bool_()),
        ("_source_file", pa.string()),
    ]
)


@dataclass(frozen=True)
class Ingested:
    rows: int
    files: int
    requests: int


def _statements(sql: str) -> list[str]:
    return [s for s in (part.strip() for part in sql.split(";\n")) if s]


def _row(record: dict, source: str) -> dict:
    return {
        "_partition_date": dt.date.fromisoformat(record["day"]),
        "request_id": record["request_id"],
        "received_at": dt.datetime.fromisoformat(record["received_at"]),
        "_key": record["key"],
        "_event_time": (
            dt.datetime.fromisoformat(record["event_time"]) if record.get("event_time") else None
        ),
        "model_name": record["model_name"],
        "model_version": record["model_version"],
        "served_by": record["served_by"],
        "canary_fallback": bool(record.get("canary_fallback", False)),
        "fields": json.dumps(record["fields"], sort_keys=True),
        "score": record["score"],
        "decision": record.get("decision"),
        "decision_threshold": record.get("decision_threshold"),
        "latency_ms": record["latency_ms"],
        "request_rows": record["request_rows"],
        "shadow_model_version": record.get("shadow_model_version"),
        "shadow_score": record.get("shadow_score"),
        "shadow_decision": record.get("shadow_decision"),
        "shadow_agree": record.get("shadow_agree"),
        "_source_file": source,
    }


def read_days(
    dataset: str, start: dt.date, end: dt.date, root: Path | None = None
) -> tuple[pa.Table, int]:
    """Every logged record of [start, end] as a typed table, and the number of files read."""
    rows, files = [], 0
    day = start
    while day <= end:
        for path in day_files(dataset, day, root):
            files += 1
            source = f"{day.isoformat()}/{path.name}"
            with path.open() as lines:
                rows.extend(_row(json.loads(line), source) for line in lines if line.strip())
        day += dt.timedelta(days=1)
    return pa.Table.from_pylist(rows, schema=COLUMNS), files


def ingest_window(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date,
    end: dt.date,
    run_id: str,
    root: Path | None = None,
) -> Ingested:
    """Replace the days [start, end] of `<ds>.online_requests` with the log's records."""
    names = spec.names
    table, files = read_days(spec.name, start, end, root)
    ensure_tables(conn, spec)
    replace = render(SQL / "replace_requests.sql", requests_table=names.table("online_requests"))
    conn.register("_logged_requests", table)
    try:
        with transaction(conn):
            for statement in _statements(replace):
                conn.execute(statement, _bound(statement, start, end, run_id))
    finally:
        conn.unregister("_logged_requests")
    requests = len(set(table.column("request_id").to_pylist()))
    return Ingested(rows=table.num_rows, files=files, requests=requests)


def ensure_tables(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    names = spec.names
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {names.schema}")
    tables = render(
        SQL / "tables.sql",
        requests_table=names.table("online_requests"),
        summary_table=names.table("online_summary"),
    )
    for statement in _statements(tables):
        conn.execute(statement)


def _bound(statement: str, start: dt.date, end: dt.date, run_id: str) -> dict:
    values = {"start": start, "end": end, "run_id": run_id}
    return {k: v for k, v in values.items() if f"${k}" in statement}


def summarise_window(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date, run_id: str
) -> list[dict]:
    """Rewrite the days [start, end] of `<ds>.online_summary`; returns those rows."""
    names = spec.names
    ensure_tables(conn, spec)
    sql = render(
        SQL / "summary.sql",
        requests_table=names.table("online_requests"),
        summary_table=names.table("online_summary"),
    )
    with transaction(conn):
        for statement in _statements(sql):
            conn.execute(statement, _bound(statement, start, end, run_id))
    cursor = conn.execute(
        f"SELECT * EXCLUDE (dagster_run_id) FROM {names.table('online_summary')} "
        "WHERE day BETWEEN $start AND $end ORDER BY day",
        {"start": start, "end": end},
    )
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
