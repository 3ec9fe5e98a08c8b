"""The feature SQL contract: what a dataset's feature SELECTs may read and must return.

Features declared in the spec (`column`, `calendar`, `window`) are generated as one SELECT
(`declared.py`), and `lookup` features as another (`lookups.py`). For what a declaration cannot say, `features.sql` lists SQL files (relative to
the spec's folder), written by the dataset's author. Each file is one SELECT.

Slots, filled by this layer with identifiers only (write literal braces as `{{` and `}}`):
  `{validated}`    the validated rows of days [$start - lookback_days, $end] and nothing later:
                   the run's own days plus the history its windows need.
  `{ref_<name>}`   the reference table loaded from `lookups.<name>` (table `<ds>.ref_<name>`).

Bound parameters (a file uses the ones it needs):
  `$start`, `$end`        DATE: first and last day this run writes.
  `$label_delay_days`     INTEGER, `label.delay_days`: a row at time t may use the label of a row
                          at time u only if u <= t - label_delay_days days (it is known by then).
  `$lookback_days`        INTEGER, `features.lookback_days`: how far back any window may reach.
  `$history_start`        DATE, $start - lookback_days: the first day `{validated}` holds.

Output: one row per validated row of [$start, $end] (rows of other days are dropped), with
  `_key`                  the validated row's key;
  every declared feature  each column of `features.columns` in exactly one file; numeric ones
                          are stored as DOUBLE, categorical ones as VARCHAR;
  `_max_history_time`     optional but expected wherever windows read labels: the latest event
                          time of a labelled row the row's features used. The blocking `leakage`
                          check fails when it is later than `_event_time - label_delay_days`;
  `_max_lookup_time`      optional: the latest timestamp of time-stamped reference data used
                          (e.g. a weather observation); it must not be after `_event_time`.
Other `_`-prefixed columns are ignored. Any other undeclared column is an error: it is most
likely a feature the spec forgot to declare. Several files are joined on `_key`.

Windows must reach back at most `lookback_days`, so a day's features are the same whether it is
built alone or inside a range: they depend only on validated rows of its own lookback.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_assets.core.spec import IDENT, DatasetSpec, SpecError
from ml_assets.core.sql import ident
from ml_assets.layers.features.declared import declared_path, declared_sql
from ml_assets.layers.features.lookups import lookup_path, lookup_sql

AUDIT_COLUMNS = ("_max_history_time", "_max_lookup_time")
PARAMETERS = ("start", "end", "label_delay_days", "lookback_days", "history_start")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# String literals and comments, matched left to right so a quote in a comment (or `--` in a
# string) is read as what it is.
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)


class FeatureSqlError(ValueError):
    """A feature SQL file breaks the contract or fails; the message names the file."""


@dataclass(frozen=True)
class FeatureFile:
    path: Path
    text: str
    slots: tuple[str, ...]
    # True for the SELECT generated from declarations (`declared.py`): no file on disk, and its
    # code is the spec section, which the layer's code version already hashes.
    generated: bool = False


def validated_relation(table: str) -> str:
    """What `{validated}` becomes: the table cut to the run's days plus their lookback."""
    return f"(SELECT * FROM {table} WHERE _partition_date BETWEEN $history_start AND $end)"


def load_feature_files(spec: DatasetSpec) -> list[FeatureFile]:
    """Read and statically check the spec's feature SQL: files exist, slots are known.

    Declared features come first, as one generated SELECT. Called when definitions load, so a
    wrong path or slot fails before any run, naming the spec.
    """
    section = spec.features
    for column in section.columns:
        if not IDENT.match(column) or column.startswith("_"):
            raise SpecError(
                f"{spec.path}: field 'features.columns.{column}': feature names are identifiers "
                "that do not start with '_' (reserved for keys and audit columns)"
            )
    known = {"validated", *(f"ref_{name}" for name in spec.lookups)}
    files = []
    for path in section.sql_paths(spec):
        if not path.is_file():
            raise SpecError(f"{spec.path}: field 'features.sql': file not found: {path}")
        text = path.read_text().strip().rstrip(";")
        try:
            slots = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            raise SpecError(
                f"{path}: bad slot syntax ({exc}); write literal braces as {{{{ }}}}"
            ) from None
        unknown = sorted(slots - known)
        if unknown:
            raise SpecError(
                f"{path}: unknown slot(s) {unknown}; available: {sorted(known)} "
                "(a `ref_<name>` slot needs `lookups.<name>` in the spec)"
            )
        files.append(FeatureFile(path, text, tuple(sorted(slots))))
    lookups = lookup_sql(spec)
    if lookups is not None:
        slots = ("validated", *(f"ref_{j.table or n}" for n, j in section.lookups.items()))
        files.insert(0, FeatureFile(lookup_path(spec), lookups, tuple(sorted(set(slots))), True))
    generated = declared_sql(spec)
    if generated is not None:
        files.insert(0, FeatureFile(declared_path(spec), generated, ("validated",), True))
    return files


def render_file(file: FeatureFile, spec: DatasetSpec, validated: str) -> str:
    tables = {f"ref_{name}": spec.names.ref_table(name) for name in spec.lookups}
    return file.text.format(validated=validated, **tables)


def parameters(
    sql: str, spec: DatasetSpec, start: dt.date, end: dt.date, **extra: object
) -> dict[str, object]:
    """The bound values a statement uses (DuckDB rejects unused named parameters)."""
    lookback = spec.features.lookback_days
    available: dict[str, object] = {
        "start": start,
        "end": end,
        "label_delay_days": spec.label.delay_days,
        "lookback_days": lookback,
        "history_start": start - dt.timedelta(days=lookback),
        **extra,
    }
    # Only parameters in code count: DuckDB rejects bound values the statement does not use.
    used = set(_PARAM.findall(_NOT_CODE.sub(" ", sql)))
    unknown = sorted(used - set(available))
    if unknown:
        raise FeatureSqlError(f"unknown parameter(s) {unknown}; available: {list(PARAMETERS)}")
    return {k: v for k, v in available.items() if k in used}


def substitute_parameters(sql: str, values: dict[str, str]) -> str:
    """`sql` with each `$name` in code (not in strings or comments) replaced by the SQL text
    `values[name]`; a name not in `values` is left as it is."""
    out, pos = [], 0
    for skipped in _NOT_CODE.finditer(sql):
        code = sql[pos : skipped.start()]
        out.append(_PARAM.sub(lambda m: values.get(m.group(1), m.group(0)), code))
        out.append(skipped.group(0))
        pos = skipped.end()
    out.append(_PARAM.sub(lambda m: values.get(m.group(1), m.group(0)), sql[pos:]))
    return "".join(out)


def composed_query(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    files: list[FeatureFile],
    validated: str,
    start: dt.date,
    end: dt.date,
) -> str:
    """One SELECT of `_key`, every feature and both audit columns, from all feature files.

    Each file's output columns are checked against the spec first, so a missing or undeclared
    feature is reported by name and file instead of surfacing as a confusing join error.
    """
    declared = list(spec.features.columns)
    owner: dict[str, str] = {}  # feature -> the expression selecting it
    owner_file: dict[str, Path] = {}
    audits: dict[str, list[str]] = {a: [] for a in AUDIT_COLUMNS}
    ctes = []
    for i, file in enumerate(files):
        sql = render_file(file, spec, validated)
        alias = f"_features_{i}"
        try:
            described = conn.execute(f"DESCRIBE {sql}", parameters(sql, spec, start, end))
            columns = [row[0] for row in described.fetchall()]
        except (duckdb.Error, FeatureSqlError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise FeatureSqlError(f"{file.path}: {first}") from None
        if "_key" not in columns:
            raise FeatureSqlError(f"{file.path}: the SELECT must return `_key`")
        undeclared = [c for c in columns if not c.startswith("_") and c not in declared]
        if undeclared:
            raise FeatureSqlError(
                f"{file.path}: returns column(s) {undeclared} that `features.columns` in "
                f"{spec.path} does not declare (declare them, or prefix helpers with '_')"
            )
        for column in columns:
            if column in declared:
                if column in owner:
                    raise FeatureSqlError(
                        f"{file.path}: feature '{column}' is also returned by {owner_file[column]}"
                    )
                owner[column] = f"{alias}.{ident(column)}"
                owner_file[column] = file.path
            elif column in audits:
                audits[column].append(f"CAST({alias}.{ident(column)} AS TIMESTAMP)")
        ctes.append(f"{alias} AS (\n{sql}\n)")
    missing = [c for c in declared if c not in owner]
    if missing:
        raise FeatureSqlError(
            f"feature(s) {missing} declared in {spec.path} are returned by none of "
            f"{[str(f.path) for f in files]}"
        )
    audit_exprs = [
        (f"greatest({', '.join(exprs)})" if exprs else "CAST(NULL AS TIMESTAMP)") + f" AS {a}"
        for a, exprs in audits.items()
    ]
    select = ", ".join(
        ["_features_0._key", *(f"{owner[c]} AS {ident(c)}" for c in declared), *audit_exprs]
    )
    joins = "".join(f"\nJOIN _features_{i} USING (_key)" for i in range(1, len(files)))
    return f"WITH {', '.join(ctes)}\nSELECT {select}\nFROM _features_0{joins}"
