"""Point-in-time features: write a window in one transaction, and the measurements its checks use.

`<ds>.features` holds one row per validated row: key, event time, partition, label and when the
label becomes known, the spec's feature columns (numeric as DOUBLE, categorical as VARCHAR), and
the audit columns the `leakage` check reads. The feature values come from the dataset's own SQL
(see `query.py` for its contract).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_assets.core.faults import fault_point
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import create_tables, ident, render, rewrite_window, table_exists
from ml_assets.layers.features.query import (
    FeatureFile,
    FeatureSqlError,
    composed_query,
    parameters,
    validated_relation,
)
from ml_assets.layers.features.reference import missing_reference_tables

SQL = Path(__file__).parent / "sql"
CHUNK_DAYS_ENV = "ML_ASSETS_FEATURE_CHUNK_DAYS"
DEFAULT_CHUNK_DAYS = 31
KEY_COLUMNS = ("_key", "_event_time", "_partition_date", "_label", "_label_known_at")
LINEAGE_COLUMNS = ("_max_history_time", "_max_lookup_time", "_featurized_at", "_run_id")


@dataclass(frozen=True)
class DayCounts:
    day: dt.date
    validated: int
    features: int
    distinct_keys: int
    missing: int
    missing_sample: list[str]

    @property
    def matches(self) -> bool:
        return self.validated == self.features == self.distinct_keys and self.missing == 0


@dataclass(frozen=True)
class Leakage:
    rows: int
    rows_with_history: int
    leaky_rows: int
    sample_keys: list[str]
    closest_history_gap: dt.timedelta | None


@dataclass(frozen=True)
class Probe:
    day: dt.date
    rows: int
    changed_rows: int
    sample_keys: list[str]


def feature_types(spec: DatasetSpec) -> dict[str, str]:
    return {
        c: "DOUBLE" if f.kind == "numeric" else "VARCHAR" for c, f in spec.features.columns.items()
    }


def ensure_table(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """Create `<ds>.features`, or refuse to write into one built for other feature columns."""
    create_tables(
        conn,
        SQL / "tables.sql",
        schema=spec.names.schema,
        features_table=spec.names.table("features"),
        feature_columns=",\n    ".join(f"{ident(c)} {t}" for c, t in feature_types(spec).items()),
    )
    actual = [
        r[0]
        for r in conn.execute(
            """SELECT column_name FROM information_schema.columns
               WHERE table_schema = ? AND table_name = 'features' ORDER BY ordinal_position""",
            [spec.name],
        ).fetchall()
    ]
    expected = [*KEY_COLUMNS, *feature_types(spec), *LINEAGE_COLUMNS]
    if actual != expected:
        # Rewriting some partitions of a table whose columns changed would mix two feature sets.
        raise FeatureSqlError(
            f"{spec.names.table_name('features')} has columns {actual} but the spec now declares {expected}: "
            f"the feature set changed. Drop the table (DROP TABLE {spec.name}.features) and "
            "re-materialize every features partition."
        )


def _require_inputs(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    if not table_exists(conn, spec.name, "validated"):
        raise FeatureSqlError(
            f"{spec.names.table_name('validated')} does not exist: materialize validated first"
        )
    missing = missing_reference_tables(conn, spec)
    if missing:
        raise FeatureSqlError(
            f"reference tables {[f'{spec.name}.ref_{m}' for m in missing]} do not exist: "
            f"materialize {spec.name}/reference_tables first"
        )


def write_features(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    files: list[FeatureFile],
    start: dt.date,
    end: dt.date,
    *,
    run_id: str,
    featurized_at: dt.datetime,
) -> list[DayCounts]:
    """Replace the features of [start, end] in one transaction; a failure keeps the old rows."""
    _require_inputs(conn, spec)
    ensure_table(conn, spec)
    query = composed_query(
        conn, spec, files, validated_relation(spec.names.table("validated")), start, end
    )
    casts = ", ".join(
        f"CAST(f.{ident(c)} AS {t}) AS {ident(c)}" for c, t in feature_types(spec).items()
    )
    insert = render(
        SQL / "insert_features.sql",
        features_table=spec.names.table("features"),
        validated_table=spec.names.table("validated"),
        feature_casts=casts,
        feature_query=query,
    )
    stamp = {"run_id": run_id, "featurized_at": featurized_at}
    with rewrite_window(conn, [spec.names.table("features")], start, end):
        for lo, hi in chunks(start, end, chunk_days()):
            try:
                conn.execute(insert, parameters(insert, spec, lo, hi, **stamp))
            except duckdb.Error as exc:
                first = str(exc).strip().splitlines()[0]
                raise FeatureSqlError(
                    f"feature SQL {[str(f.path) for f in files]} failed for {lo}..{hi}: {first}"
                ) from None
            fault_point("features.chunk_written")
    return day_counts(conn, spec, start, end)


def chunk_days() -> int:
    """Days per feature query within one window's transaction (`ML_ASSETS_FEATURE_CHUNK_DAYS`).

    Why chunks: the window query's memory grows with the rows it frames at once, and a day's
    features read only its `lookback_days` of history, so each chunk (with its own lookback)
    gives the same rows. The 10x flights year in 92-day chunks with no memory limit: process peak
    6.21 GiB; in 31-day chunks with the warehouse's default 1500MB limit: 1.95 GiB, the step no
    slower (see `DEFAULT_MEMORY_LIMIT`)."""
    value = os.environ.get(CHUNK_DAYS_ENV, str(DEFAULT_CHUNK_DAYS))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{CHUNK_DAYS_ENV} must be a whole number of days >= 1, got {value!r}")
    return int(value)


def chunks(start: dt.date, end: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """[start, end] cut into consecutive ranges of at most `days` days."""
    out, lo = [], start
    while lo <= end:
        hi = min(end, lo + dt.timedelta(days=days - 1))
        out.append((lo, hi))
        lo = hi + dt.timedelta(days=1)
    return out


def day_counts(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> list[DayCounts]:
    sql = render(
        SQL / "day_counts.sql",
        validated_table=spec.names.table("validated"),
        features_table=spec.names.table("features"),
    )
    rows = conn.execute(sql, {"start": start, "end": end}).fetchall()
    return [DayCounts(*row) for row in rows]


def data_version(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> str:
    """Order-free fingerprint of the window's feature values (not of when or by whom they ran)."""
    columns = ", ".join(
        ident(c) for c in [*KEY_COLUMNS, *feature_types(spec), *LINEAGE_COLUMNS[:2]]
    )
    ((value,),) = conn.execute(
        f"""SELECT coalesce(sum(hash({columns})::HUGEINT), 0) % 18446744073709551557
            FROM {spec.names.table("features")} WHERE _partition_date BETWEEN $start AND $end""",
        {"start": start, "end": end},
    ).fetchall()
    return f"{int(value):016x}"


def leakage(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> Leakage:
    sql = render(SQL / "leakage.sql", features_table=spec.names.table("features"))
    return Leakage(*conn.execute(sql, parameters(sql, spec, start, end)).fetchone())


def leakage_probe(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, files: list[FeatureFile], day: dt.date
) -> Probe:
    """Recompute one day's features with every not-yet-known label scrambled; compare.

    The audit columns are reported by the feature SQL itself, so a leak the SQL does not report
    (a wrong frame with an honest-looking `_max_history_time`) would pass them. This probe needs
    no cooperation: a day's features may not depend on labels of rows at or after
    `day + 1 - label_delay_days`, so scrambling those labels must leave them unchanged.
    """
    probe_table = "_features_probe_validated"
    cutoff = dt.datetime.combine(day, dt.time()) + dt.timedelta(days=1 - spec.label.delay_days)
    create = render(
        SQL / "probe_validated.sql",
        probe_table=probe_table,
        validated_table=spec.names.table("validated"),
    )
    conn.execute(create, parameters(create, spec, day, day, cutoff=cutoff))
    try:
        honest = composed_query(
            conn, spec, files, validated_relation(spec.names.table("validated")), day, day
        )
        scrambled = composed_query(conn, spec, files, validated_relation(probe_table), day, day)
        differs = " OR ".join(
            f"a.{ident(c)} IS DISTINCT FROM b.{ident(c)}"
            if t == "VARCHAR"
            # Numbers within 1e-9: summation order may differ between two runs of a window.
            else f"coalesce(abs(a.{ident(c)} - b.{ident(c)}) > 1e-9 * (1 + abs(a.{ident(c)})), "
            f"(a.{ident(c)} IS NULL) <> (b.{ident(c)} IS NULL))"
            for c, t in feature_types(spec).items()
        )
        sql = f"""
            WITH a AS ({honest}), b AS ({scrambled}),
            d AS (SELECT coalesce(a._key, b._key) AS _key,
                         a._key IS NULL OR b._key IS NULL OR {differs} AS changed
                  FROM a FULL JOIN b ON a._key = b._key)
            SELECT count(*), count(*) FILTER (WHERE changed),
                   coalesce(list(_key ORDER BY _key) FILTER (WHERE changed), [])[1:10]
            FROM d"""
        rows, changed, sample = conn.execute(sql, parameters(sql, spec, day, day)).fetchone()
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {probe_table}")
    return Probe(day, rows, changed, list(sample))


def null_rates(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> dict[str, dict]:
    """Per feature: NULL share over the window, and its worst day."""
    columns = list(spec.features.columns)
    shares = ", ".join(f"count(*) - count({ident(c)})" for c in columns)
    rows = conn.execute(
        f"""SELECT _partition_date, count(*), {shares} FROM {spec.names.table("features")}
            WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL ORDER BY 1""",
        {"start": start, "end": end},
    ).fetchall()
    total = sum(r[1] for r in rows)
    out = {}
    for i, c in enumerate(columns):
        nulls = sum(r[2 + i] for r in rows)
        worst = max(rows, key=lambda r: r[2 + i] / r[1], default=None)
        out[c] = {
            "rate": nulls / total if total else 0.0,
            "worst_day": worst[0].isoformat() if worst else None,
            "worst_day_rate": worst[2 + i] / worst[1] if worst else 0.0,
        }
    return out


def range_violations(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> dict[str, dict]:
    """Per numeric feature with bounds: values outside them (or not finite), with sample keys."""
    bounded = {
        c: f
        for c, f in spec.features.columns.items()
        if f.kind == "numeric" and (f.min is not None or f.max is not None)
    }
    out = {}
    for c, f in bounded.items():
        col = ident(c)
        outside = [f"NOT isfinite({col})"]
        if f.min is not None:
            outside.append(f"{col} < {f.min!r}")
        if f.max is not None:
            outside.append(f"{col} > {f.max!r}")
        cond = " OR ".join(outside)
        n, lo, hi, sample = conn.execute(
            f"""SELECT count(*) FILTER (WHERE {cond}), min({col}), max({col}),
                       coalesce(list(_key ORDER BY _key) FILTER (WHERE {cond}), [])[1:5]
                FROM {spec.names.table("features")} WHERE _partition_date BETWEEN $start AND $end""",
            {"start": start, "end": end},
        ).fetchone()
        out[c] = {
            "outside": n,
            "min": f.min,
            "max": f.max,
            "observed_min": lo,
            "observed_max": hi,
            "sample_keys": list(sample),
        }
    return out
