"""`drift_report` and `performance`: is the world still the one the champion learned, and is the
champion still as good as when it was promoted?

Checks are computed inside the assets (one pass over the data) and carry `worst_day` and
`partition_end` in their metadata: the retrain sensor reads those from the Dagster instance.
They are partitioned like the assets, and a range run also records each day's own result
(`ml_assets.core.checks`) from the per-day drift shares and trailing metrics already computed.
"""

import datetime as dt
import math
from collections.abc import Iterator

import dagster as dg

from ml_assets import settings
from ml_assets.core.checks import DayResult, daily_check_spec, record_days
from ml_assets.core.lineage import code_version
from ml_assets.core.metrics import higher_is_better
from ml_assets.core.partitions import daily_partitions, window, window_metadata
from ml_assets.core.predictor import load_predictor
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.monitor.calibration import calibrate
from ml_assets.layers.monitor.calibration_cache import cached_calibration, calibration_key
from ml_assets.layers.monitor.performance import (
    Expectation,
    realized_performance,
    write_performance,
)
from ml_assets.layers.monitor.report import (
    current_frame,
    reference_frame,
    window_drift,
    write_drift,
)
from ml_assets.layers.promote.champion import Champion
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def _day_meta(
    day: dt.date | None, end: dt.date, summary: str, observed: float | None, threshold: float
) -> dict[str, dg.MetadataValue]:
    """What the retrain sensor reads (`worst_day`, `partition_end`), and the observed value next
    to its threshold as numbers, so the UI plots them across evaluations."""
    return {
        "worst_day": dg.MetadataValue.text((day or end).isoformat()),
        "partition_end": dg.MetadataValue.text(end.isoformat()),
        "summary": dg.MetadataValue.text(summary),
        "observed": dg.MetadataValue.float(float("nan") if observed is None else observed),
        "threshold": dg.MetadataValue.float(threshold),
    }


def build_monitor_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    partitions = daily_partitions(spec)
    monitoring = spec.monitoring
    features = spec.features
    version = code_version(spec, "monitor")
    drift_key, perf_key = spec.names.key("drift_report"), spec.names.key("performance")

    @dg.multi_asset(
        name=spec.names.op("drift_report"),
        specs=[
            dg.AssetSpec(
                drift_key,
                deps=[spec.names.key("predictions"), spec.names.key("champion_model")],
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb", "evidently"},
                code_version=version,
                description=(
                    "Per-day drift of every feature and of the score against the champion's "
                    "training window (full data), plus an Evidently HTML report per run."
                ),
                metadata={"dagster/table_name": spec.names.table_name("drift")},
            )
        ],
        ins={"champion_model": dg.AssetIn(spec.names.key("champion_model"))},
        check_specs=[
            daily_check_spec(
                spec,
                "drift_share",
                asset=drift_key,
                description=f"Share of drifted features stays below {monitoring.drift_share_warn:.0%} each day.",
            ),
            daily_check_spec(
                spec,
                "severe_drift",
                asset=drift_key,
                description=f"Share of drifted features stays below {monitoring.drift_share_severe:.0%} each day.",
            ),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        champion_model: Champion,
        warehouse: Warehouse,
        mlflow: MlflowTracking,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        start, end = window(context)
        ref = champion_model.ref
        ref_start, ref_end = (dt.date.fromisoformat(d) for d in ref.train_window)
        columns = list(features.columns)
        path = settings.reports_dir() / spec.name / "drift" / f"drift_{start}_{end}.html"
        with warehouse.get_connection() as conn:
            reference = reference_frame(conn, spec, columns, ref_start, ref_end)
            current = current_frame(conn, spec, columns, start, end)
        # Prediction drift needs the champion's scores on its own training window.
        reference["score"] = load_predictor(ref, mlflow).predict(reference)
        drift_settings = {
            "p_value": monitoring.drift_p_value,
            "quantile": monitoring.drift_quantile,
        }
        # Computed once per champion and reference window, not once per run (see the module).
        cached = cached_calibration(
            settings.cache_dir() / spec.name / "drift_calibration",
            label=f"v{ref.version}_{ref_start}_{ref_end}",
            key=calibration_key(
                reference, features.numeric, features.categorical, **drift_settings
            ),
            compute=lambda: calibrate(
                reference, features.numeric, features.categorical, **drift_settings
            ),
        )
        calibration = cached.calibration
        drift = window_drift(
            reference,
            current,
            features.numeric,
            features.categorical,
            monitoring,
            report_path=path,
            seed=spec.training.seed,
            calibration=calibration,
        )
        with warehouse.get_connection() as conn:
            write_drift(
                conn,
                spec,
                drift,
                start,
                end,
                reference=ref.train_window,
                model_version=ref.version,
                run_id=context.run_id,
            )
        worst = drift.worst_day()
        worst_day, worst_result = worst if worst else (None, None)
        share = worst_result.share_drifted if worst_result else 0.0
        drifted = worst_result.drifted_columns if worst_result else []
        summary = f"worst day {worst_day}: {share:.0%} of features drifted {drifted}"
        yield dg.MaterializeResult(
            asset_key=drift_key,
            metadata={
                **window_metadata(start, end),
                "reference_window": dg.MetadataValue.text(f"{ref_start}..{ref_end}"),
                "model_version": dg.MetadataValue.text(ref.version),
                "days": dg.MetadataValue.int(len(drift.days)),
                "worst_share_drifted": dg.MetadataValue.float(share),
                "share_drifted_by_day": dg.MetadataValue.json(
                    {d.isoformat(): round(r.share_drifted, 3) for d, r in drift.days.items()}
                ),
                "window_drift": dg.MetadataValue.json(
                    drift.window.summary() if drift.window else {}
                ),
                "prediction_drift": dg.MetadataValue.json(
                    {
                        "method": drift.window.prediction.method,
                        "score": drift.window.prediction.score,
                        "drifted": drift.window.prediction.drifted,
                    }
                    if drift.window and drift.window.prediction
                    else {}
                ),
                "evidently_report": dg.MetadataValue.path(str(path))
                if drift.evidently
                else dg.MetadataValue.text(
                    f"not rendered (monitoring.evidently_report: {monitoring.evidently_report}"
                    + (", nothing drifted)" if monitoring.evidently_report == "on_drift" else ")")
                ),
                "evidently_disagreements": dg.MetadataValue.json(drift.disagreements),
                "calibration": dg.MetadataValue.json(calibration.to_json()),
                "calibration_file": dg.MetadataValue.path(str(cached.path)),
                "calibration_reused": dg.MetadataValue.bool(cached.hit),
                "expected_drift": dg.MetadataValue.json(list(monitoring.expected_drift)),
            },
        )
        shares = [r.share_drifted for r in drift.days.values()]
        for name, limit, severity in (
            ("drift_share", monitoring.drift_share_warn, dg.AssetCheckSeverity.WARN),
            ("severe_drift", monitoring.drift_share_severe, dg.AssetCheckSeverity.ERROR),
        ):
            days = [
                DayResult(
                    d,
                    r.share_drifted < limit,
                    observed=r.share_drifted,
                    threshold=limit,
                    metadata={"drifted": dg.MetadataValue.json(r.drifted_columns)},
                )
                for d, r in sorted(drift.days.items())
            ]
            yield dg.AssetCheckResult(
                check_name=name,
                passed=all(s < limit for s in shares),
                severity=severity,
                metadata=record_days(
                    context,
                    days,
                    _day_meta(worst_day, end, summary, share, limit),
                    severity=severity,
                    check_name=name,
                ),
            )

    metric = spec.evaluation.metric

    @dg.multi_asset(
        name=spec.names.op("performance"),
        specs=[
            dg.AssetSpec(
                perf_key,
                deps=[spec.names.key("predictions"), spec.names.key("champion_model")],
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb"},
                code_version=version,
                description=(
                    f"Realized {metric} of the predictions once labels arrived (trailing "
                    f"{monitoring.performance_window_days} days), against the champion's evaluation."
                ),
                metadata={"dagster/table_name": spec.names.table_name("performance")},
            )
        ],
        ins={"champion_model": dg.AssetIn(spec.names.key("champion_model"))},
        check_specs=[
            daily_check_spec(
                spec,
                "degradation",
                asset=perf_key,
                description=f"Trailing {monitoring.performance_window_days}-day {metric} is "
                "beyond neither expectation: the worst window the champion's holdout makes "
                f"likely by chance (the {monitoring.degradation_quantile:.0%} quantile of a "
                f"day-block bootstrap) minus {monitoring.performance_tolerance}, and, after "
                f"{monitoring.performance_history_days} judged days, the champion's holdout "
                "metric minus the same quantile of how far earlier windows fell below theirs.",
            )
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def performance(
        context: dg.AssetExecutionContext, champion_model: Champion, warehouse: Warehouse
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        start, end = window(context)
        # The worst trailing window the champion's own holdout makes likely by chance; the point
        # estimate only for a champion promoted before that was recorded.
        expected = champion_model.expected_trailing
        expectation = Expectation(
            metric=metric,
            holdout=champion_model.metric_value,
            expected_worst=expected if math.isfinite(expected) else champion_model.metric_value,
            tolerance=monitoring.performance_tolerance,
            quantile=monitoring.degradation_quantile,
            history_days=monitoring.performance_history_days,
            window_days=monitoring.performance_window_days,
        )
        with warehouse.get_connection() as conn:
            days = realized_performance(
                conn,
                spec,
                start,
                end,
                expectation=expectation,
                min_rows=monitoring.performance_min_rows,
                known_by=dt.datetime.now(),
                threshold=0.5 if champion_model.threshold is None else champion_model.threshold,
            )
            write_performance(conn, spec, days, expectation=expectation, run_id=context.run_id)
        judged = [d for d in days if d.trailing_value is not None]
        degraded = [d for d in judged if d.degraded]
        pick = min if higher_is_better(metric) else max
        worst = pick(judged, key=lambda d: d.trailing_value, default=None)
        if degraded:
            worst = degraded[0]
        summary = f"{len(degraded)} of {len(judged)} days degraded" + (
            f"; worst {worst.day}: {worst.trailing_value:.4f} against bound {worst.bound:.4f}"
            if worst
            else ""
        )
        yield dg.MaterializeResult(
            asset_key=perf_key,
            metadata={
                **window_metadata(start, end),
                "metric": dg.MetadataValue.text(metric),
                "expected_worst": dg.MetadataValue.float(expectation.expected_worst),
                "holdout_metric": dg.MetadataValue.float(champion_model.metric_value),
                "bound_by_day": dg.MetadataValue.json(
                    {d.day.isoformat(): round(d.bound, 4) for d in days if d.bound is not None}
                ),
                "labelled_rows": dg.MetadataValue.int(sum(d.labelled_rows for d in days)),
                "trailing_by_day": dg.MetadataValue.json(
                    {
                        d.day.isoformat(): None
                        if d.trailing_value is None
                        else round(d.trailing_value, 4)
                        for d in days
                    }
                ),
            },
        )
        per_day = [
            DayResult(
                d.day,
                not d.degraded,
                observed=d.trailing_value,
                threshold=d.bound,
                description=None
                if d.trailing_value is not None
                else "Not judged: too few labelled rows in the trailing window yet.",
            )
            for d in days
        ]
        yield dg.AssetCheckResult(
            check_name="degradation",
            passed=not degraded,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=record_days(
                context,
                per_day,
                _day_meta(
                    worst.day if worst else None,
                    end,
                    summary,
                    worst.trailing_value if worst else None,
                    worst.bound
                    if worst and worst.bound is not None
                    else expectation.expected_worst,
                ),
                check_name="degradation",
            ),
        )

    return [drift_report, performance]
