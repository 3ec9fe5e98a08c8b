"""`predictions`: each day's features scored by the champion, every row with its lineage."""

import datetime as dt

import dagster as dg

from ml_assets.core.checks import DayResult, daily_asset_check, record_days, window_days
from ml_assets.core.lineage import code_version
from ml_assets.core.partitions import daily_partitions, window, window_metadata
from ml_assets.core.predictor import load_predictor
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.promote.champion import Champion
from ml_assets.layers.score.logic import score_window, unscored
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def build_score_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    partitions = daily_partitions(spec)

    @dg.multi_asset(
        name=spec.names.op("predictions"),
        specs=[
            dg.AssetSpec(
                spec.names.key("predictions"),
                deps=[spec.names.key("features"), spec.names.key("champion_model")],
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb", "mlflow"},
                code_version=code_version(spec, "score"),
                description=(
                    "Each feature row scored by the champion (binary: its calibrated probability "
                    "and its decision at the version's stored threshold), with model name, "
                    "version, MLflow run, feature partition, Dagster run and scoring time; "
                    "beside it, in the same transaction, each row's top feature contributions "
                    "(`explanations`, raw-model margin units) for audit."
                ),
                metadata={
                    "dagster/table_name": spec.names.table_name("predictions"),
                    "explanations_table": spec.names.table_name("explanations"),
                },
            )
        ],
        ins={"champion_model": dg.AssetIn(spec.names.key("champion_model"))},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def predictions(
        context: dg.AssetExecutionContext,
        champion_model: Champion,
        warehouse: Warehouse,
        mlflow: MlflowTracking,
    ) -> dg.MaterializeResult:
        start, end = window(context)
        predictor = load_predictor(champion_model.ref, mlflow)
        with warehouse.get_connection() as conn:
            written = score_window(
                conn,
                spec,
                predictor,
                start,
                end,
                run_id=context.run_id,
                scored_at=dt.datetime.now(dt.UTC),
            )
        ref = champion_model.ref
        return dg.MaterializeResult(
            metadata={
                **window_metadata(start, end),
                "dagster/row_count": dg.MetadataValue.int(written.rows),
                "model": dg.MetadataValue.text(f"{ref.registered_name} v{ref.version}"),
                "model_version": dg.MetadataValue.text(ref.version),
                "mlflow_run_id": dg.MetadataValue.text(ref.run_id),
                "score_mean": dg.MetadataValue.float(written.score_mean or float("nan")),
                "explained_rows": dg.MetadataValue.int(written.explained),
                "explain_top_k": dg.MetadataValue.int(spec.scoring.explain_top_k),
                **(
                    {}
                    if written.threshold is None
                    else {
                        "decision_threshold": dg.MetadataValue.float(written.threshold),
                        "positive_decision_rate": dg.MetadataValue.float(
                            written.positive_rate or 0.0
                        ),
                    }
                ),
            }
        )

    return [predictions]


def build_score_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    @daily_asset_check(
        spec,
        asset=spec.names.key("predictions"),
        name="every_row_scored",
        pool=warehouse_pool(),
        blocking=True,
        description="Every feature row of the window has a prediction.",
    )
    def every_row_scored(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            missing = unscored(conn, spec, start, end)
        by_day = {d: (n, k) for d, n, k in missing}
        days = [
            DayResult(
                d,
                d not in by_day,
                observed=by_day[d][0] if d in by_day else 0,
                threshold=0,
                metadata={"sample_keys": dg.MetadataValue.json(by_day[d][1])}
                if d in by_day
                else {},
            )
            for d in window_days(start, end)
        ]
        window_metadata = {
            "unscored_rows": sum(n for _, n, _ in missing),
            "days": dg.MetadataValue.json(
                [{"day": d.isoformat(), "missing": n, "sample_keys": k} for d, n, k in missing[:20]]
            ),
        }
        return dg.AssetCheckResult(
            passed=not missing, metadata=record_days(context, days, window_metadata)
        )

    return [every_row_scored]
