"""Enforce the contract: split a raw window into validated and quarantine, in one transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_assets.core.faults import fault_point
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import create_tables, ident, render, rewrite_window
from ml_assets.layers.validate.contract import flag_fragments, typed_name

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class DayCounts:
    day: dt.date
    raw: int
    validated: int
    quarantined: int

    @property
    def conserved(self) -> bool:
        return self.raw == self.validated + self.quarantined


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    rows: int
    sample_keys: list[str]


def ensure_tables(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    create_tables(
        conn,
        SQL / "tables.sql",
        schema=spec.names.schema,
        validated_table=spec.names.table("validated"),
        quarantine_table=spec.names.table("quarantine"),
        typed_columns=",\n    ".join(
            f"{ident(c)} {col.type}" for c, col in spec.contract.columns.items()
        ),
        raw_columns=",\n    ".join(f"{ident(c)} VARCHAR" for c in spec.columns),
    )


def write_validated(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date,
    end: dt.date,
    *,
    run_id: str,
    validated_at: dt.datetime,
) -> list[DayCounts]:
    """Replace validated and quarantine for [start, end]; every raw row lands in exactly one."""
    ensure_tables(conn, spec)
    schema = ident(spec.name)
    window = {"start": start, "end": end}
    stamp = {"validated_at": validated_at, "run_id": run_id}
    tables = [spec.names.table("validated"), spec.names.table("quarantine")]
    with rewrite_window(conn, tables, start, end):
        conn.execute(
            render(SQL / "flag.sql", raw_table=spec.names.table("raw"), **flag_fragments(spec)),
            window,
        )
        conn.execute(
            render(
                SQL / "insert_validated.sql",
                validated_table=f"{schema}.validated",
                label=spec.label.sql,
                key_columns=", ".join(ident(k) for k in spec.contract.unique_key),
                typed_as_names=", ".join(f"{typed_name(c)} AS {ident(c)}" for c in spec.columns),
            ),
            stamp,
        )
        fault_point("validated.validated_written")
        conn.execute(
            render(
                SQL / "insert_quarantine.sql",
                quarantine_table=f"{schema}.quarantine",
                raw_columns=", ".join(ident(c) for c in spec.columns),
            ),
            stamp,
        )
        conn.execute("DROP TABLE _flagged")
    return partition_counts(conn, spec, start, end)


def partition_counts(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> list[DayCounts]:
    rows = conn.execute(
        render(SQL / "partition_counts.sql", schema=ident(spec.name)), {"start": start, "end": end}
    ).fetchall()
    return [DayCounts(*row) for row in rows]


def reason_counts(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> list[ReasonCount]:
    rows = conn.execute(
        render(
            SQL / "reason_counts.sql",
            schema=ident(spec.name),
            key_columns=", ".join(ident(k) for k in spec.contract.unique_key),
        ),
        {"start": start, "end": end},
    ).fetchall()
    return [ReasonCount(reason, n, list(sample)) for reason, n, sample in rows]


def duplicate_keys(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> list[tuple]:
    sql = render(
        SQL / "duplicate_keys.sql",
        schema=ident(spec.name),
        key_columns=", ".join(ident(k) for k in spec.contract.unique_key),
    )
    return conn.execute(sql, {"start": start, "end": end}).fetchall()


def actual_schema(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> list[tuple[str, str]]:
    return conn.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = ? AND table_name = 'validated' ORDER BY ordinal_position""",
        [spec.name],
    ).fetchall()


def worst_null_rates(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> dict[str, tuple[float, str]]:
    """Per column with a `max_null_rate`: the highest daily NULL share in the window and its day."""
    limited = [c for c, col in spec.contract.columns.items() if col.max_null_rate is not None]
    if not limited:
        return {}
    shares = ", ".join(f"1 - count({ident(c)}) / count(*) AS {ident(c)}" for c in limited)
    rows = conn.execute(
        f"""SELECT _partition_date, {shares} FROM {ident(spec.name)}.validated
            WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL""",
        {"start": start, "end": end},
    ).fetchall()
    worst: dict[str, tuple[float, str]] = {}
    for day, *values in rows:
        for c, v in zip(limited, values, strict=True):
            if c not in worst or v > worst[c][0]:
                worst[c] = (float(v), day.isoformat())
    return worst
