"""The bare DuckDB side of `many_small_partitions`, and the check that it did the graph's work.

What a careful person would write without the graph, for a date-partitioned CSV: the file read as
text (raw), the contract's casts and rules as one query, then the rows that break none (validated,
typed) and the others with the rules they break (quarantine). No lineage columns, no per-partition
bookkeeping, no checks. `verify` then holds both sides equal day by day and row by row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from benchmarks.bare_duckdb import bound_params
from benchmarks.harness import timer
from ml_assets.core.spec import DatasetSpec, load_spec
from ml_assets.core.sql import ident, literal

SQL = Path(__file__).parent / "sql"
LAYERS = ("raw", "validated", "quarantine")


def bare_sql(spec: DatasetSpec) -> str:
    """The script: the file as text (raw), the contract's casts and rules as one query, then the
    rows that break none (validated, typed) and the rest with their reasons (quarantine)."""
    cols = spec.contract.columns
    typed, reasons = [], []
    for c, col in cols.items():
        name, t = ident(c), ident(f"{c}__t")
        cast = name if col.type == "VARCHAR" else f"TRY_CAST(trim({name}) AS {col.type})"
        typed.append(f"{cast} AS {t}")
        if not col.nullable:
            reasons.append(f"CASE WHEN {name} IS NULL THEN 'null:{c}' END")
        reasons.append(f"CASE WHEN {name} IS NOT NULL AND {t} IS NULL THEN 'type:{c}' END")
        if col.type == "DOUBLE":
            reasons.append(f"CASE WHEN isnan({t}) OR isinf({t}) THEN 'not_finite:{c}' END")
        if col.min is not None:
            reasons.append(f"CASE WHEN {t} < {literal(col.min)} THEN 'range:{c}' END")
        if col.max is not None:
            reasons.append(f"CASE WHEN {t} > {literal(col.max)} THEN 'range:{c}' END")
        if col.allowed is not None:
            values = ", ".join(literal(v) for v in col.allowed)
            reasons.append(f"CASE WHEN {t} NOT IN ({values}) THEN 'allowed:{c}' END")
    key = ", ".join(ident(f"{k}__t") for k in spec.contract.unique_key)
    reasons.append(
        f"CASE WHEN row_number() OVER (PARTITION BY {key} ORDER BY _row) > 1 "
        "THEN 'duplicate_key' END"
    )
    source = spec.source.csv
    return (
        (SQL / "bare_data_layers.sql")
        .read_text()
        .format(
            header=literal(source.header),
            delim=literal(source.delimiter),
            nulls=", ".join(literal(s) for s in source.null_strings),
            event_time=ident(spec.event_time.column),
            typed=", ".join(typed),
            reasons=",\n        ".join(reasons),
            typed_as=", ".join(f"{ident(f'{c}__t')} AS {ident(c)}" for c in cols),
            raw_columns=", ".join(ident(c) for c in cols),
        )
    )


def run_bare(task: dict[str, Any]) -> dict[str, Any]:
    spec = load_spec(Path(task["spec"]))
    db = Path(task["out"])
    values = {"path": task["source"], "start": task["start"], "end": task["end"]}
    statements = [s for s in bare_sql(spec).split(";\n") if s.strip()]
    with timer() as t, duckdb.connect(str(db)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET enable_progress_bar = false")
        for statement in statements:
            conn.execute(statement, bound_params(statement, values))
        rows = {
            layer: conn.execute(f"SELECT count(*) FROM {layer}").fetchone()[0] for layer in LAYERS
        }
    return {"seconds": t[0], "rows": rows, "db": str(db)}


def verify(spec: DatasetSpec, graph_db: Path, bare_db: Path) -> dict[str, Any]:
    """Same rows on both sides: per-day counts of the three tables, every validated value (by
    key, typed), every quarantined row's reasons."""
    schema = ident(spec.name)
    key = spec.contract.unique_key
    on = " AND ".join(f"g.{ident(k)} = b.{ident(k)}" for k in key)
    differs = " OR ".join(
        f"g.{ident(c)} IS DISTINCT FROM b.{ident(c)}" for c in spec.contract.columns
    )
    conn = duckdb.connect()
    try:
        conn.execute(f"ATTACH {literal(str(graph_db))} AS g_db (READ_ONLY)")
        conn.execute(f"ATTACH {literal(str(bare_db))} AS b_db (READ_ONLY)")
        days_off = {
            layer: conn.execute(
                f"""SELECT count(*) FROM
                    (SELECT _partition_date, count(*) n FROM g_db.{schema}.{layer} GROUP BY ALL) g
                    FULL JOIN (SELECT _partition_date, count(*) n FROM b_db.{layer} GROUP BY ALL) b
                    USING (_partition_date) WHERE g.n IS DISTINCT FROM b.n"""
            ).fetchone()[0]
            for layer in LAYERS
        }
        validated_off = conn.execute(
            f"""SELECT count(*) FROM g_db.{schema}.validated g FULL JOIN b_db.validated b ON {on}
                WHERE {differs} OR g._partition_date IS DISTINCT FROM b._partition_date"""
        ).fetchone()[0]
        quarantine_off = conn.execute(
            f"""SELECT count(*) FROM g_db.{schema}.quarantine g FULL JOIN b_db.quarantine b
                ON {" AND ".join(f"g.{ident(k)} = b.{ident(k)}" for k in key)}
                WHERE g._reasons IS DISTINCT FROM b._reasons"""
        ).fetchone()[0]
        reasons = dict(
            conn.execute(
                f"""SELECT reason, count(*) FROM
                    (SELECT unnest(_reasons) AS reason FROM g_db.{schema}.quarantine) GROUP BY ALL"""
            ).fetchall()
        )
    finally:
        conn.close()
    agree = not any(days_off.values()) and validated_off == 0 and quarantine_off == 0
    return {
        "days_with_other_counts": days_off,
        "validated_rows_differing": validated_off,
        "quarantine_rows_differing": quarantine_off,
        "quarantine_reasons": reasons,
        "agree": agree,
    }
