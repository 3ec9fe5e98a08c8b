"""Checks on `validated` and `quarantine`: schema, keys, row conservation, contract rates."""

import dagster as dg

from ml_assets.core.partitions import window
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.validate.contract import expected_validated_schema
from ml_assets.layers.validate.logic import (
    actual_schema,
    duplicate_keys,
    partition_counts,
    reason_counts,
    worst_null_rates,
)
from ml_assets.resources.warehouse import WAREHOUSE_POOL, Warehouse


def build_validate_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    common = {"pool": WAREHOUSE_POOL}

    @dg.asset_check(
        asset=spec.names.key("validated"),
        name="schema",
        blocking=True,
        **common,
        description="The validated table has exactly the contract's columns and types, in order.",
    )
    def schema(warehouse: Warehouse) -> dg.AssetCheckResult:
        expected = expected_validated_schema(spec)
        with warehouse.get_connection() as conn:
            actual = actual_schema(conn, spec)
        missing = [c for c in expected if c not in actual]
        unexpected = [c for c in actual if c not in expected]
        return dg.AssetCheckResult(
            passed=actual == expected,
            metadata={
                "missing_or_wrong_type": dg.MetadataValue.json([list(c) for c in missing]),
                "unexpected": dg.MetadataValue.json([list(c) for c in unexpected]),
                "columns": len(actual),
            },
        )

    @dg.asset_check(
        asset=spec.names.key("validated"),
        name="key_unique",
        blocking=True,
        **common,
        description=f"No two validated rows share the key {spec.contract.unique_key}.",
    )
    def key_unique(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            dupes = duplicate_keys(conn, spec, start, end)
        return dg.AssetCheckResult(
            passed=not dupes,
            metadata={
                "duplicate_keys": len(dupes),
                "sample": dg.MetadataValue.json([[str(v) for v in row] for row in dupes]),
            },
        )

    @dg.asset_check(
        asset=spec.names.key("validated"),
        name="row_conservation",
        blocking=True,
        additional_deps=[spec.names.key("quarantine")],
        **common,
        description="Every raw row is in exactly one of validated and quarantine, day by day.",
    )
    def row_conservation(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            days = partition_counts(conn, spec, start, end)
        broken = [d for d in days if not d.conserved]
        return dg.AssetCheckResult(
            passed=not broken,
            metadata={
                "days": len(days),
                "raw": sum(d.raw for d in days),
                "validated": sum(d.validated for d in days),
                "quarantined": sum(d.quarantined for d in days),
                "unbalanced_days": dg.MetadataValue.json(
                    [
                        {
                            "day": d.day.isoformat(),
                            "raw": d.raw,
                            "validated": d.validated,
                            "quarantined": d.quarantined,
                        }
                        for d in broken[:20]
                    ]
                ),
            },
        )

    @dg.asset_check(
        asset=spec.names.key("validated"),
        name="null_rates",
        **common,
        description="Each nullable column's daily NULL share stays under its contract `max_null_rate`.",
    )
    def null_rates(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            worst = worst_null_rates(conn, spec, start, end)
        cols = spec.contract.columns
        over = {c: v for c, v in worst.items() if v[0] > (cols[c].max_null_rate or 0)}
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "worst_daily_null_rate": dg.MetadataValue.json(
                    {
                        c: {"rate": round(r, 4), "day": d, "max": cols[c].max_null_rate}
                        for c, (r, d) in worst.items()
                    }
                ),
                "columns_over_limit": dg.MetadataValue.json(sorted(over)),
            },
        )

    @dg.asset_check(
        asset=spec.names.key("quarantine"),
        name="violation_rate",
        **common,
        description=(
            f"At most {spec.quality.max_quarantine_rate:.1%} of a day's raw rows break the contract "
            "(null, type, range, allowed values, duplicates, future times)."
        ),
    )
    def violation_rate(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            days = partition_counts(conn, spec, start, end)
            reasons = reason_counts(conn, spec, start, end)
        limit = spec.quality.max_quarantine_rate
        over = [d for d in days if d.raw and d.quarantined / d.raw > limit]
        quarantined, raw = sum(d.quarantined for d in days), sum(d.raw for d in days)
        return dg.AssetCheckResult(
            passed=not over,
            metadata={
                "quarantine_rate": dg.MetadataValue.float(quarantined / raw if raw else 0.0),
                "max_rate": dg.MetadataValue.float(limit),
                "days_over_limit": dg.MetadataValue.json(
                    [
                        {"day": d.day.isoformat(), "rate": round(d.quarantined / d.raw, 4)}
                        for d in over[:20]
                    ]
                ),
                "by_reason": dg.MetadataValue.json(
                    [
                        {"reason": r.reason, "rows": r.rows, "sample_keys": r.sample_keys}
                        for r in reasons
                    ]
                ),
            },
        )

    return [schema, key_unique, row_conservation, null_rates, violation_rate]
