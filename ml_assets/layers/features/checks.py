"""Checks on `features`: no leakage, one row per validated row, NULL shares and value ranges.

Each is partitioned like `features` and reports every day of a range run on its own
(`ml_assets.core.checks`): from the per-day counts where the check has them, else by re-asking
only the parts of the window that fail.
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
from ml_assets.layers.features.logic import (
    day_counts,
    leakage,
    leakage_probe,
    null_rates,
    range_violations,
)
from ml_assets.layers.features.query import load_feature_files
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def build_features_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    section = spec.features
    files = load_feature_files(spec)
    delay = spec.label.delay_days
    common = {"asset": spec.names.key("features"), "pool": warehouse_pool()}
    limits = {c: f.max_null_rate for c, f in section.columns.items()}

    def nulls_over(rates: dict[str, dict]) -> dict[str, float]:
        """Columns whose worst day is over the limit, with that day's share."""
        return {
            c: round(r["worst_day_rate"], 4)
            for c, r in rates.items()
            if r["worst_day_rate"] > limits[c]
        }

    def outside(found: dict[str, dict]) -> dict[str, int]:
        return {c: v["outside"] for c, v in found.items() if v["outside"]}

    @daily_asset_check(
        spec,
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
            leaky = failing_days(
                start,
                end,
                lambda a, b: leakage(conn, spec, a, b),
                lambda a: a.leaky_rows > 0,
                whole=audit,
            )
        gap = audit.closest_history_gap
        probed = {p.day: p for p in probes}
        days = []
        for d in window_days(start, end):
            rows = leaky[d].leaky_rows if d in leaky else 0
            changed = probed[d].changed_rows if d in probed else 0
            days.append(
                DayResult(
                    d,
                    rows == 0 and changed == 0,
                    observed=rows + changed,
                    threshold=0,
                    metadata={
                        "leaky_rows": rows,
                        "probe_changed_rows": changed if d in probed else -1,
                        "sample_keys": dg.MetadataValue.json(
                            (leaky[d].sample_keys if d in leaky else [])
                            + (probed[d].sample_keys if d in probed else [])
                        ),
                    },
                    # The probe recomputes a day's features: the window's ends carry it.
                    description=None if d in probed else "Audit columns only: not probed.",
                )
            )
        window_metadata = {
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
        }
        return dg.AssetCheckResult(
            passed=audit.leaky_rows == 0 and all(p.changed_rows == 0 for p in probes),
            metadata=record_days(context, days, window_metadata),
        )

    @daily_asset_check(
        spec,
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
        per_day = [
            DayResult(
                d.day,
                d.matches,
                observed=abs(d.features - d.validated) + d.missing,
                threshold=0,
                metadata={"validated": d.validated, "features": d.features, "missing": d.missing},
            )
            for d in days
        ]
        window_metadata = {
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
        }
        return dg.AssetCheckResult(
            passed=not broken, metadata=record_days(context, per_day, window_metadata)
        )

    @daily_asset_check(
        spec,
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
            # The window is judged on its share; a day on its own share, as a one-day run would
            # be (so a day may warn in a window that does not). A window holds such a day
            # exactly when its worst day is over the limit.
            bad = failing_days(
                start,
                end,
                lambda a, b: null_rates(conn, spec, a, b),
                lambda r: bool(nulls_over(r)),
                whole=rates,
            )
        over = sorted(c for c, r in rates.items() if r["rate"] > limits[c])
        days = [
            DayResult(
                d,
                d not in bad,
                metadata={"columns_over_limit": dg.MetadataValue.json(nulls_over(bad[d]))}
                if d in bad
                else {},
            )
            for d in window_days(start, end)
        ]
        severity = dg.AssetCheckSeverity.WARN
        window_metadata = {
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
        }
        return dg.AssetCheckResult(
            passed=not over,
            severity=severity,
            metadata=record_days(context, days, window_metadata, severity=severity),
        )

    # WARN, not ERROR: the bounds are plausibility ranges on real-world values, several of which
    # come from reference data the contract does not cover (weather, planes). An outlier there
    # is a signal to look at, which the models tolerate; a leak or a missing row is a defect, and
    # those checks block.
    @daily_asset_check(
        spec,
        name="ranges",
        **common,
        description="Each numeric feature stays within its declared min/max (and is finite).",
    )
    def ranges(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            found = range_violations(conn, spec, start, end)
            bad = failing_days(
                start,
                end,
                lambda a, b: range_violations(conn, spec, a, b),
                lambda f: bool(outside(f)),
                whole=found,
            )
        over = sorted(c for c, v in found.items() if v["outside"])
        days = [
            DayResult(
                d,
                d not in bad,
                observed=sum(outside(bad[d]).values()) if d in bad else 0,
                threshold=0,
                metadata={"columns_out_of_range": dg.MetadataValue.json(outside(bad[d]))}
                if d in bad
                else {},
            )
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
                    "ranges": dg.MetadataValue.json(found),
                    "columns_out_of_range": dg.MetadataValue.json(over),
                    "rows_out_of_range": sum(v["outside"] for v in found.values()),
                },
                severity=severity,
            ),
        )

    return [leakage_check, row_count, null_rates_check, ranges]
