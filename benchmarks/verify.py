"""A baseline that does less work is not a baseline: compare outputs row by row, every feature.

The graph's `<ds>.features`, the bare DuckDB script's `features` table and the bare pandas
Parquet are joined on the row key and every feature compared: categorical values exactly,
numbers within 1e-9 (relative, plus 1e-9 absolute), NULL only against NULL. Exact (bitwise)
differences are counted too, so "within tolerance" and "identical" are told apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import ident, literal

TOLERANCE = 1e-9


def _relation(
    conn: duckdb.DuckDBPyConnection, alias: str, kind: str, path: Path, spec: DatasetSpec
) -> str:
    """Attach or read one side; return a SELECT of `_key` and the features."""
    columns = ", ".join(ident(c) for c in spec.features.columns)
    if kind == "parquet":
        key = ", ".join(
            f"CAST({ident(k)} AS BIGINT)"
            if spec.contract.columns[k].type in {"INTEGER", "BIGINT"}
            else ident(k)
            for k in spec.contract.unique_key
        )
        return f"SELECT concat_ws('|', {key}) AS _key, {columns} FROM read_parquet({literal(str(path))})"
    conn.execute(f"ATTACH {literal(str(path))} AS {alias} (READ_ONLY)")
    table = f"{alias}.{ident(spec.name)}.features" if kind == "graph" else f"{alias}.features"
    return f"SELECT _key, {columns} FROM {table}"


def compare(spec: DatasetSpec, left: tuple[str, Path], right: tuple[str, Path]) -> dict[str, Any]:
    """Row and value agreement of two feature outputs; kinds: graph | duckdb | parquet."""
    section = spec.features
    conn = duckdb.connect()
    try:
        a = _relation(conn, "left_db", left[0], left[1], spec)
        b = _relation(conn, "right_db", right[0], right[1], spec)
        within, exact, gaps = [], [], []
        for c, f in section.columns.items():
            x, y = f"a.{ident(c)}", f"b.{ident(c)}"
            exact.append(f"count(*) FILTER (WHERE {x} IS DISTINCT FROM {y})")
            if f.kind == "categorical":
                within.append(f"count(*) FILTER (WHERE {x} IS DISTINCT FROM {y})")
                gaps.append("NULL")
            else:
                far = f"abs({x} - {y}) > {TOLERANCE} * (1 + abs({x}))"
                within.append(
                    f"count(*) FILTER (WHERE coalesce({far}, ({x} IS NULL) <> ({y} IS NULL)))"
                )
                gaps.append(f"max(abs({x} - {y}))")
        sql = f"""
            WITH a AS ({a}), b AS ({b})
            SELECT count(a._key), count(b._key), count(a._key) FILTER (WHERE b._key IS NOT NULL),
                   {", ".join(within)}, {", ".join(exact)}, {", ".join(gaps)}
            FROM a FULL JOIN b ON a._key = b._key"""
        row = conn.execute(sql).fetchone()
    finally:
        conn.close()
    n = len(section.columns)
    names = list(section.columns)
    rows_left, rows_right, matched = row[:3]
    differ = dict(zip(names, row[3 : 3 + n], strict=True))
    not_exact = dict(zip(names, row[3 + n : 3 + 2 * n], strict=True))
    max_gap = [g for g in row[3 + 2 * n :] if g is not None]
    return {
        "left": left[0],
        "right": right[0],
        "rows_left": rows_left,
        "rows_right": rows_right,
        "rows_matched": matched,
        "features_compared": n,
        "values_differing": {c: v for c, v in differ.items() if v},
        "values_not_bitwise_equal": {c: v for c, v in not_exact.items() if v},
        "max_abs_difference": max(max_gap) if max_gap else 0.0,
        "tolerance": TOLERANCE,
        "agree": rows_left == rows_right == matched and not any(differ.values()),
    }
