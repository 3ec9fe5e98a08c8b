"""Checks on `features`: no leakage, one row per validated row, NULL shares and value ranges."""

import dagster as dg

from ml_assets.core.partitions import window
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.features.logic import (
    day_counts,
    leakage,
    leakage_probe,
    null_rates,
    range_violations,
)
from ml_assets.layers.features.query import load_feature_files
from ml_assets.resources.warehouse import WAREHOUSE_POOL, Warehouse


def build_features_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    section = spec.features
    files = load_feature_files(spec)
    delay = spec.label.delay_days
    common = {"asset": spec.names.key("features"), "pool": WAREHOUSE_POOL}

    @dg.asset_check(
        name="leakage",
        blocking=True,
        **common,
        description=(
            f"No feature used a label before it was known: every row's `_max_history_time` is at "
            f"most its event time minus {delay} day(s) and lookups are not after the event; and "
            "scrambling the not-yet-known labels of the window's first and last day leaves "
            "those days' features unchanged."
        ),
    )
    def leakage_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            audit = leakage(conn, spec, start, end)
            probes = [leakage_probe(conn, spec, files, day) for day in sorted({start, end})]
        gap = audit.closest_history_gap
        return dg.AssetCheckResult(
            passed=audit.leaky_rows == 0 and all(p.changed_rows == 0 for p in probes),
            metadata={
                "rows": audit.rows,
                "rows_with_history": audit.rows_with_history,
                "leaky_rows": audit.leaky_rows,
                "sample_keys": dg.MetadataValue.json(audit.sample_keys),
                # How close to the event the latest label used came (at least the delay).
                "closest_history_gap_hours": dg.MetadataValue.text(
                    f"{gap.total_seconds() / 3600:.2f}" if gap is not None else "no history used"
                ),
                "required_gap_hours": dg.MetadataValue.float(24.0 * delay),
                "probe": dg.MetadataValue.json(
                    [
                        {
                            "day": p.day.isoformat(),
                            "rows": p.rows,
                            "changed_rows": p.changed_rows,
                            "sample_keys": p.sample_keys,
                        }
                        for p in probes
                    ]
                ),
            },
        )

    @dg.asset_check(
        name="row_count_matches_validated",
        blocking=True,
        additional_deps=[spec.names.key("validated")],
        **common,
        description="Exactly one feature row per validated row, day by day (none missing, none doubled).",
    )
    def row_count(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            days = day_counts(conn, spec, start, end)
        broken = [d for d in days if not d.matches]
        return dg.AssetCheckResult(
            passed=not broken,
            metadata={
                "days": len(days),
                "validated": sum(d.validated for d in days),
                "features": sum(d.features for d in days),
                "mismatched_days": dg.MetadataValue.json(
                    [
                        {
                            "day": d.day.isoformat(),
                            "validated": d.validated,
                            "features": d.features,
                            "distinct_keys": d.distinct_keys,
                            "missing": d.missing,
                            "missing_sample": d.missing_sample,
                        }
                        for d in broken[:20]
                    ]
                ),
            },
        )

    @dg.asset_check(
        name="null_rates",
        **common,
        description="Each feature's NULL share over the run's window stays under its `max_null_rate`.",
    )
    def null_rates_check(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            rates = null_rates(conn, spec, start, end)
        limits = {c: f.max_null_rate for c, f in section.columns.items()}
        over = sorted(c for c, r in rates.items() if r["rate"] > limits[c])
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "null_rates": dg.MetadataValue.json(
                    {
                        c: {
                            "rate": round(r["rate"], 4),
                            "max": limits[c],
                            "worst_day": r["worst_day"],
                            "worst_day_rate": round(r["worst_day_rate"], 4),
                        }
                        for c, r in rates.items()
                    }
                ),
                "columns_over_limit": dg.MetadataValue.json(over),
            },
        )

    # WARN, not ERROR: the bounds are plausibility ranges on real-world values, several of which
    # come from reference data the contract does not cover (weather, planes). An outlier there
    # is a signal to look at, which the models tolerate; a leak or a missing row is a defect, and
    # those checks block.
    @dg.asset_check(
        name="ranges",
        **common,
        description="Each numeric feature stays within its declared min/max (and is finite).",
    )
    def ranges(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            found = range_violations(conn, spec, start, end)
        over = sorted(c for c, v in found.items() if v["outside"])
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "ranges": dg.MetadataValue.json(found),
                "columns_out_of_range": dg.MetadataValue.json(over),
                "rows_out_of_range": sum(v["outside"] for v in found.values()),
            },
        )

    return [leakage_check, row_count, null_rates_check, ranges]
