"""The bare DuckDB baseline: what a careful person would write without the graph.

One script on a fresh DuckDB file: a typed read of the same source file, the contract's rules as
one WHERE clause (nulls, ranges, allowed values, finite numbers) and first-row-per-key, the
lookups loaded as tables, then the dataset's own feature SQL (the same file the graph runs) over
the whole window, stored as a table. No raw text copy, no quarantine table, no lineage columns,
no checks, no per-partition bookkeeping: those are what the graph adds, and what this compares.

Rules the baseline leaves out because they cannot fire on a typed read of the bundled data
(`type:` reasons, `tz_missing:`, `future_event_time`) are listed in `SKIPPED_RULES`; the harness
checks that both sides keep the same rows, so a rule that did fire would show as a mismatch.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb

from benchmarks.harness import timer
from ml_assets.core.spec import DatasetSpec, SourceSpec
from ml_assets.core.sql import ident, literal

SQL = Path(__file__).parent / "sql"
SKIPPED_RULES = ("type (a typed read fails instead)", "tz_missing", "future_event_time")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def typed_read(spec: DatasetSpec, source: SourceSpec, fmt: str) -> str:
    """A SELECT of the source with contract types, plus `_row` (file order, for first-per-key)."""
    columns = spec.contract.columns
    if fmt == "parquet":
        casts = ", ".join(
            f"CAST({ident(c)} AS {col.type}) AS {ident(c)}" for c, col in columns.items()
        )
        return f"SELECT {casts}, row_number() OVER () AS _row FROM read_parquet($path)"
    csv = source.csv
    types = ", ".join(f"{literal(c)}: {literal(col.type)}" for c, col in columns.items())
    nulls = ", ".join(literal(s) for s in csv.null_strings)
    return (
        "SELECT *, row_number() OVER () AS _row FROM read_csv($path, "
        f"header = {literal(csv.header)}, delim = {literal(csv.delimiter)}, "
        f"nullstr = [{nulls}], types = {{{types}}})"
    )


def contract_where(spec: DatasetSpec) -> str:
    """The contract's row rules as one predicate (NULL passes a rule unless the column is required)."""
    rules = []
    for c, col in spec.contract.columns.items():
        name = ident(c)
        if not col.nullable:
            rules.append(f"{name} IS NOT NULL")
        if col.type == "DOUBLE":
            rules.append(f"coalesce(isfinite({name}), true)")
        if col.min is not None:
            rules.append(f"coalesce({name} >= {literal(col.min)}, true)")
        if col.max is not None:
            rules.append(f"coalesce({name} <= {literal(col.max)}, true)")
        if col.allowed is not None:
            values = ", ".join(literal(v) for v in col.allowed)
            rules.append(f"coalesce({name} IN ({values}), true)")
    return "\n  AND ".join(rules)


def feature_sql(spec: DatasetSpec) -> str:
    """The dataset's features written by hand as one SELECT, with plain tables in its slots.

    A bare script has no declarations: it runs `sql/<dataset>_features.sql`, the hand-written
    equivalent of the spec's features (the tests hold the two equal for flights). A scaled copy
    (`scale.py` names it `<dataset>_x<k>`) runs its source's file.
    """
    path = SQL / f"{re.sub(r'_x[0-9]+$', '', spec.name)}_features.sql"
    if not path.is_file():
        raise NotImplementedError(f"the bare baseline needs {path}, the hand-written features")
    text = path.read_text().strip().rstrip(";")
    return text.format(validated="validated", **{f"ref_{n}": f"ref_{n}" for n in spec.lookups})


def bound_params(sql: str, values: dict[str, object]) -> dict[str, object]:
    # Comments in the feature file mention parameters too; binding extras is harmless only if
    # they are used, so pass exactly the ones that appear (DuckDB rejects unused ones).
    code = re.sub(r"--[^\n]*", " ", sql)
    used = set(_PARAM.findall(code))
    return {k: v for k, v in values.items() if k in used}


def run(
    spec: DatasetSpec,
    source_path: Path,
    source_format: str,
    lookup_paths: dict[str, list[Path]],
    db_path: Path,
    start: dt.date,
    end: dt.date,
    memory_limit: str | None = None,
) -> dict[str, object]:
    """Run the script on a new DuckDB file; return its wall time and row counts."""
    if db_path.exists():
        raise FileExistsError(f"{db_path}: the bare script starts from a new file")
    lookback = spec.features.lookback_days if spec.features else 0
    values: dict[str, object] = {
        "path": str(source_path),
        "start": start,
        "end": end,
        "label_delay_days": spec.label.delay_days,
        "lookback_days": lookback,
        "history_start": start - dt.timedelta(days=lookback),
    }
    validated = (
        (SQL / "bare_validated.sql")
        .read_text()
        .format(
            typed_read=typed_read(spec, spec.source, source_format),
            event_time=spec.event_time.sql,
            label=spec.label.sql,
            key_columns=", ".join(ident(k) for k in spec.contract.unique_key),
            contract=contract_where(spec),
        )
    )
    features = f"CREATE TABLE features AS\n{feature_sql(spec)}" if spec.features else ""
    with timer() as t:
        conn = duckdb.connect(str(db_path))
        try:
            # The same session settings as the warehouse resource.
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute("SET enable_progress_bar = false")
            if memory_limit:
                conn.execute("SET memory_limit = $limit", {"limit": memory_limit})
            conn.execute(validated, bound_params(validated, values))
            for name, paths in lookup_paths.items():
                csv = spec.lookups[name].csv
                nulls = ", ".join(literal(s) for s in csv.null_strings)
                reader = (
                    "read_parquet($paths)"
                    if spec.lookups[name].format == "parquet"
                    else f"read_csv($paths, header = {literal(csv.header)}, "
                    f"delim = {literal(csv.delimiter)}, nullstr = [{nulls}], sample_size = -1)"
                )
                conn.execute(
                    f"CREATE TABLE {ident('ref_' + name)} AS SELECT * FROM {reader}",
                    {"paths": [str(p) for p in paths]},
                )
            if features:
                conn.execute(features, bound_params(features, values))
            counts = {
                "validated": conn.execute("SELECT count(*) FROM validated").fetchone()[0],
                "features": (
                    conn.execute("SELECT count(*) FROM features").fetchone()[0]
                    if features
                    else None
                ),
            }
        finally:
            conn.close()
    return {"seconds": t[0], "rows": counts}
