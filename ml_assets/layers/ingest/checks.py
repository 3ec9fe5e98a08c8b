"""Checks on `raw`: row-count anomaly against the trailing days, and freshness.

`row_count_anomaly` judges each day, so it is partitioned and reports every day of a range run
(`ml_assets.core.checks`); `freshness` judges the table against today, not a day, and stays one
result per run.
"""

import datetime as dt

import dagster as dg

from ml_assets.core.checks import DayResult, daily_asset_check, record_days, window_days
from ml_assets.core.partitions import window
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.ingest.logic import expected_newest_day, newest_raw_day, row_count_anomalies
from ml_assets.resources.warehouse import WAREHOUSE_POOL, Warehouse


def build_raw_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    q = spec.quality

    @daily_asset_check(
        spec,
        asset=spec.names.key("raw"),
        name="row_count_anomaly",
        pool=WAREHOUSE_POOL,
        description=(
            f"Each day's row count stays within {q.row_count_min_ratio}x..{q.row_count_max_ratio}x "
            f"of the median of the {q.trailing_days} days before it."
        ),
    )
    def row_count_anomaly(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            anomalies, judged = row_count_anomalies(conn, spec, start, end)
        odd = {a.day: a for a in anomalies}
        days = [
            DayResult(
                d,
                False,
                observed=odd[d].ratio,
                metadata={"rows": odd[d].rows, "trailing_median": odd[d].trailing_median},
            )
            if d in odd
            else DayResult(d, True)
            for d in window_days(start, end)
        ]
        severity = dg.AssetCheckSeverity.WARN
        window_metadata = {
            "days_judged": judged,
            "anomalous_days": len(anomalies),
            "anomalies": dg.MetadataValue.json(
                [
                    {
                        "day": a.day.isoformat(),
                        "rows": a.rows,
                        "trailing_median": a.trailing_median,
                        "ratio": a.ratio,
                    }
                    for a in anomalies[:20]
                ]
            ),
        }
        return dg.AssetCheckResult(
            passed=not anomalies,
            severity=severity,
            metadata=record_days(context, days, window_metadata, severity=severity),
        )

    @dg.asset_check(
        asset=spec.names.key("raw"),
        name="freshness",
        pool=WAREHOUSE_POOL,
        description=(
            f"The newest raw day is at most {q.freshness_max_lag_days} day(s) behind the newest day "
            "that should exist (yesterday, or the spec's last day)."
        ),
    )
    def freshness(warehouse: Warehouse) -> dg.AssetCheckResult:
        expected = expected_newest_day(spec, dt.date.today())
        with warehouse.get_connection() as conn:
            newest = newest_raw_day(conn, spec)
        lag = None if newest is None else (expected - newest).days
        return dg.AssetCheckResult(
            passed=lag is not None and lag <= q.freshness_max_lag_days,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_day": str(newest),
                "expected_newest_day": expected.isoformat(),
                "lag_days": lag if lag is not None else -1,
                "max_lag_days": q.freshness_max_lag_days,
            },
        )

    return [row_count_anomaly, freshness]
