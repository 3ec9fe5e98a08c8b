"""Declared lookup features: a value of the reference-table row each event finds.

A hand-written join to a reference table is correct offline and costly online: DuckDB plans and
runs it per request, scanning the whole table (flights' as-of weather join was ~1.5 ms of each
request's ~3.3 ms statement). Declared (`features.lookups` for the join, `lookup` on the
feature), the offline build runs the join this module writes, and serving finds the same row in
the snapshot's sorted arrays (`online/compute.py`), both from this module's table query, so the
parity check compares two implementations of one definition.

The row found, per join:
  - `key` only: the table's row whose key equals the event's (as text; NULL matches nothing);
  - with `time`: of those, the latest at or before `_event_time` (an as-of join), none when it
    is older than `max_age_hours`. Its time is reported in `_max_lookup_time`.
Rows of one key (and time) are deduplicated by `first_by`, so a key never multiplies events.
"""

from __future__ import annotations

from pathlib import Path

from ml_assets.core.spec import DatasetSpec, FeatureColumn, LookupJoin
from ml_assets.core.sql import ident, render

SQL = Path(__file__).parent / "sql"


def _escaped(sql: str) -> str:
    """A spec's SQL fragment inside generated text that is formatted once more (render_file)."""
    return sql.replace("{", "{{").replace("}", "}}")


def key_text(parts: list[str]) -> str:
    """One text per key, NULL when a part is NULL: the event side and the table side of a join
    both call this (offline and online), so the two can never format keys apart."""
    texts = ", ".join(f"CAST(({p}) AS VARCHAR)" for p in parts)
    present = " AND ".join(f"({p}) IS NOT NULL" for p in parts)
    return f"CASE WHEN {present} THEN CAST(to_json(list_value({texts})) AS VARCHAR) END"


def lookup_features(spec: DatasetSpec, join: str) -> dict[str, FeatureColumn]:
    """The features that read `join`, in spec order."""
    return {c: f for c, f in spec.features.columns.items() if f.lookup and f.lookup.join == join}


def value_type(feature: FeatureColumn) -> str:
    """What a join's table query holds for the feature: a timestamp for an age."""
    if feature.lookup is not None and feature.lookup.age is not None:
        return "TIMESTAMP"
    return "DOUBLE" if feature.kind == "numeric" else "VARCHAR"


def value_column(feature: str) -> str:
    return f"_v_{feature}"


def join_rows_sql(spec: DatasetSpec, name: str) -> str:
    """The rows of join `name` (`_lk`, `_lt`, one `_v_<feature>` per feature), deduplicated;
    its table is the slot `{ref_<table>}`, filled like a feature file's (`render_file`)."""
    join = spec.features.lookups[name]
    features = lookup_features(spec, name)
    keys = [_escaped(sql) for sql in join.key.values()]
    values = {
        c: f"CAST(({_escaped(f.lookup.value)}) AS {value_type(f)})" for c, f in features.items()
    }
    keep = [f"({_escaped(join.where)})"] if join.where else []
    keep += [f"({k}) IS NOT NULL" for k in keys]
    time = "CAST(NULL AS TIMESTAMP)"
    if join.time is not None:
        time = f"CAST(({_escaped(join.time)}) AS TIMESTAMP)"
        keep.append(f"{time} IS NOT NULL")
    order = [f"({_escaped(join.first_by)})"] if join.first_by else []
    order += list(values.values()) or ["1"]
    return render(
        SQL / "lookup_rows.sql",
        key=key_text(keys),
        time=time,
        values="".join(f", {sql} AS {ident(value_column(c))}" for c, sql in values.items()),
        table="{ref_" + (join.table or name) + "}",
        keep=" AND ".join(keep),
        order=", ".join(order),
    )


def _fresh(join: LookupJoin, alias: str) -> str | None:
    """SQL true when the row `alias` found is recent enough (None: any row found is)."""
    if join.max_age_hours is None:
        return None
    return f"{alias}._lt >= r._event_time - INTERVAL {join.max_age_hours} HOURS"


def lookup_sql(spec: DatasetSpec) -> str | None:
    """One SELECT over `{validated}` of every lookup feature, or None when there is none."""
    joins = {
        name: join for name, join in spec.features.lookups.items() if lookup_features(spec, name)
    }
    if not joins:
        return None
    tables, keys, features, joined, audits = [], [], [], [], []
    for i, (name, join) in enumerate(joins.items()):
        alias = f"j{i}"
        tables.append(f"_lookup_{i} AS (\n{join_rows_sql(spec, name)}\n)")
        keys.append(f", {key_text([ident(c) for c in join.key])} AS _lk_{i}")
        on = f"r._lk_{i} = {alias}._lk"
        if join.time is None:
            joined.append(f"\nLEFT JOIN _lookup_{i} AS {alias} ON {on}")
        else:
            joined.append(
                f"\nASOF LEFT JOIN _lookup_{i} AS {alias} ON {on} AND r._event_time >= {alias}._lt"
            )
        fresh = _fresh(join, alias)
        for column, feature in lookup_features(spec, name).items():
            value = f"{alias}.{ident(value_column(column))}"
            if feature.lookup.age is not None:
                value = f"date_diff('{feature.lookup.age}', {value}, r._event_time)"
            if fresh is not None:
                value = f"CASE WHEN {fresh} THEN {value} END"
            features.append(f",\n    {value} AS {ident(column)}")
        if join.time is not None:
            audits.append(
                f"{alias}._lt" if fresh is None else f"CASE WHEN {fresh} THEN {alias}._lt END"
            )
    audit = ""
    if audits:
        stamp = audits[0] if len(audits) == 1 else f"greatest({', '.join(audits)})"
        audit = f",\n    {stamp} AS _max_lookup_time"
    return render(
        SQL / "lookup_features.sql",
        tables=",\n".join(tables),
        keys="".join(keys),
        features="".join(features),
        audit=audit,
        joins="".join(joined),
    )


def lookup_path(spec: DatasetSpec) -> Path:
    """What error messages call the generated SELECT: the spec field it comes from."""
    return Path(f"{spec.path}#features.lookups")
