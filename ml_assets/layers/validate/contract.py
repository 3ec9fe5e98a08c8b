"""The data contract as SQL: typed casts and one reason code per broken rule.

Reason codes are `rule:column` (`null:`, `type:`, `not_finite:`, `range:`, `allowed:`,
`tz_missing:`) plus the row-level `future_event_time` and `duplicate_key`. They are stable strings
so quarantine can be queried and counted by rule.
"""

from __future__ import annotations

from ml_assets.core.spec import ColumnContract, DatasetSpec
from ml_assets.core.sql import ident, literal

INTEGER_TYPES = {"INTEGER", "BIGINT"}
# An offset-free timestamp in a TIMESTAMPTZ column is ambiguous when others carry offsets.
_OFFSET = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def typed_name(column: str) -> str:
    return ident(f"{column}__typed")


def typed_expr(column: str, contract: ColumnContract) -> str:
    """Cast raw text to the contract type; anything that does not cast exactly becomes NULL."""
    raw = f"r.{ident(column)}"
    if contract.type in INTEGER_TYPES:
        # TRY_CAST('1.5' AS INTEGER) rounds to 2; an integer column must hold integers.
        return (
            f"CASE WHEN regexp_full_match(trim({raw}), '[+-]?[0-9]+(\\.0*)?') "
            f"THEN TRY_CAST(regexp_replace(trim({raw}), '\\.0*$', '') AS {contract.type}) END"
        )
    if contract.type == "VARCHAR":
        return raw
    return f"TRY_CAST(trim({raw}) AS {contract.type})"


def reason_exprs(column: str, contract: ColumnContract) -> list[str]:
    raw, typed = f"{ident(column)}", typed_name(column)
    out = []
    if not contract.nullable:
        out.append(f"CASE WHEN {raw} IS NULL THEN 'null:{column}' END")
    out.append(f"CASE WHEN {raw} IS NOT NULL AND {typed} IS NULL THEN 'type:{column}' END")
    if contract.type == "DOUBLE":
        out.append(f"CASE WHEN isnan({typed}) OR isinf({typed}) THEN 'not_finite:{column}' END")
    if contract.min is not None:
        out.append(f"CASE WHEN {typed} < {literal(contract.min)} THEN 'range:{column}' END")
    if contract.max is not None:
        out.append(f"CASE WHEN {typed} > {literal(contract.max)} THEN 'range:{column}' END")
    if contract.allowed is not None:
        values = ", ".join(literal(v) for v in contract.allowed)
        out.append(f"CASE WHEN {typed} NOT IN ({values}) THEN 'allowed:{column}' END")
    if contract.type == "TIMESTAMPTZ":
        out.append(
            f"CASE WHEN {raw} IS NOT NULL AND NOT regexp_matches(trim({raw}), '{_OFFSET}') "
            f"THEN 'tz_missing:{column}' END"
        )
    return out


def row_reason_exprs(spec: DatasetSpec) -> list[str]:
    key_typed = ", ".join(typed_name(k) for k in spec.contract.unique_key)
    key_present = " AND ".join(f"{typed_name(k)} IS NOT NULL" for k in spec.contract.unique_key)
    tolerance = spec.quality.future_tolerance_minutes
    return [
        # Compared with the time the row was ingested (not validated), so re-validating later gives
        # the same verdict.
        f"CASE WHEN _event_time > timezone({literal(spec.event_time.timezone)}, _ingested_at) "
        f"+ INTERVAL {tolerance} MINUTE THEN 'future_event_time' END",
        # Keep the first occurrence of a key (file, then line order); later ones are duplicates.
        f"CASE WHEN {key_present} AND row_number() OVER (PARTITION BY {key_typed} "
        f"ORDER BY _source_checksum, _source_row) > 1 THEN 'duplicate_key' END",
    ]


def flag_fragments(spec: DatasetSpec) -> dict[str, str]:
    cols = spec.contract.columns
    reasons = [e for c, col in cols.items() for e in reason_exprs(c, col)] + row_reason_exprs(spec)
    return {
        "typed_columns": ", ".join(
            f"{typed_expr(c, col)} AS {typed_name(c)}" for c, col in cols.items()
        ),
        "reason_exprs": ",\n        ".join(reasons),
    }


def expected_validated_schema(spec: DatasetSpec) -> list[tuple[str, str]]:
    """(column, DuckDB type) pairs the schema check compares the table against."""
    duck = {
        "INTEGER": "INTEGER",
        "BIGINT": "BIGINT",
        "DOUBLE": "DOUBLE",
        "VARCHAR": "VARCHAR",
        "BOOLEAN": "BOOLEAN",
        "DATE": "DATE",
        "TIMESTAMP": "TIMESTAMP",
        "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
    }
    cols = [(c, duck[col.type]) for c, col in spec.contract.columns.items()]
    return [
        *cols,
        ("_event_time", "TIMESTAMP"),
        ("_partition_date", "DATE"),
        ("_source_file", "VARCHAR"),
        ("_source_checksum", "VARCHAR"),
        ("_source_row", "BIGINT"),
        ("_validated_at", "TIMESTAMP WITH TIME ZONE"),
        ("_run_id", "VARCHAR"),
        ("_label", "DOUBLE"),
        ("_key", "VARCHAR"),
    ]
