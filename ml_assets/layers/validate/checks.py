"""Checks on `validated` and `quarantine`: schema, keys, row conservation, contract rates.

Each is partitioned like its asset and reports every day of a range run on its own
(`ml_assets.core.checks`), from the per-day figures it computes anyway where it has them.
"""

import dagster as dg

from ml_assets.core.checks import (
    DayResult,
    daily_asset_check,
    failing_days,
    record_days,
    window_days,
)
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
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def build_validate_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    common = {"pool": warehouse_pool()}
    limits = {c: col.max_null_rate or 0 for c, col in spec.contract.columns.items()}

    def over_limit(worst: dict[str, tuple[float, str]]) -> dict[str, tuple[float, str]]:
        return {c: v for c, v in worst.items() if v[0] > limits[c]}

    @daily_asset_check(
        spec,
        asset=spec.names.key("validated"),
        name="schema",
        blocking=True,
        **common,
        description="The validated table has exactly the contract's columns and types, in order.",
    )
    def schema(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        start, end = window(context)
        expected = expected_validated_schema(spec)
        with warehouse.get_connection() as conn:
            actual = actual_schema(conn, spec)
        missing = [c for c in expected if c not in actual]
        unexpected = [c for c in actual if c not in expected]
        passed = actual == expected
        # One table holds every day: each day of the window gets the table's verdict.
        days = [
            DayResult(d, passed, observed=len(missing) + len(unexpected), threshold=0)
            for d in window_days(start, end)
        ]
        return dg.AssetCheckResult(
            passed=passed,
            metadata=record_days(
                context,
                days,
                {
                    "missing_or_wrong_type": dg.MetadataValue.json([list(c) for c in missing]),
                    "unexpected": dg.MetadataValue.json([list(c) for c in unexpected]),
                    "columns": len(actual),
                },
            ),
        )

    @daily_asset_check(
        spec,
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
            # A key repeated across two days fails the window but neither day alone.
            bad = failing_days(
                start, end, lambda a, b: duplicate_keys(conn, spec, a, b), bool, whole=dupes
            )
        days = [
            DayResult(
                d,
                d not in bad,
                observed=len(bad.get(d, [])),
                threshold=0,
                metadata={"sample": _sample(bad[d])} if d in bad else {},
            )
            for d in window_days(start, end)
        ]
        return dg.AssetCheckResult(
            passed=not dupes,
            metadata=record_days(
                context, days, {"duplicate_keys": len(dupes), "sample": _sample(dupes)}
            ),
        )

    @daily_asset_check(
        spec,
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
        per_day = [
            DayResult(
                d.day,
                d.conserved,
                observed=abs(d.raw - d.validated - d.quarantined),
                threshold=0,
                metadata={"raw": d.raw, "validated": d.validated, "quarantined": d.quarantined},
            )
            for d in days
        ]
        window_metadata = {
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
        }
        return dg.AssetCheckResult(
            passed=not broken, metadata=record_days(context, per_day, window_metadata)
        )

    @daily_asset_check(
        spec,
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
            # A window is over a limit exactly when one of its days is.
            bad = failing_days(
                start,
                end,
                lambda a, b: worst_null_rates(conn, spec, a, b),
                lambda w: bool(over_limit(w)),
                whole=worst,
            )
        cols = spec.contract.columns
        over = over_limit(worst)
        days = [
            DayResult(d, False, metadata={"columns_over_limit": _rates(over_limit(bad[d]))})
            if d in bad
            else DayResult(d, True)
            for d in window_days(start, end)
        ]
        severity = dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(
            passed=not over,
            severity=severity,
            metadata=record_days(
                context,
                days,
                {
                    "worst_daily_null_rate": dg.MetadataValue.json(
                        {
                            c: {"rate": round(r, 4), "day": d, "max": cols[c].max_null_rate}
                            for c, (r, d) in worst.items()
                        }
                    ),
                    "columns_over_limit": dg.MetadataValue.json(sorted(over)),
                },
                severity=severity,
            ),
        )

    @daily_asset_check(
        spec,
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
        per_day = [
            DayResult(
                d.day,
                d not in over,
                observed=d.quarantined / d.raw if d.raw else 0.0,
                threshold=limit,
                metadata={"raw": d.raw, "quarantined": d.quarantined},
            )
            for d in days
        ]
        window_metadata = {
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
        }
        return dg.AssetCheckResult(
            passed=not over, metadata=record_days(context, per_day, window_metadata)
        )

    return [schema, key_unique, row_conservation, null_rates, violation_rate]


def _rates(over: dict[str, tuple[float, str]]) -> dg.MetadataValue:
    return dg.MetadataValue.json({c: round(rate, 4) for c, (rate, _) in over.items()})


def _sample(rows: list[tuple]) -> dg.MetadataValue:
    return dg.MetadataValue.json([[str(v) for v in row] for row in rows])
