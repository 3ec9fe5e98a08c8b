"""`online_performance`: the service's traffic under monitoring, per day, once labels arrive."""

import datetime as dt

import dagster as dg

from ml_assets.core.lineage import code_version
from ml_assets.core.partitions import daily_partitions, window, window_metadata
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.monitor.online import REFERENCE_DAYS, OnlineDay, online_performance
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def build_online_monitor_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    names = spec.names
    partitions = daily_partitions(spec)
    version = code_version(spec, "monitor")
    metric = spec.evaluation.metric

    @dg.multi_asset(
        name=names.op("online_performance"),
        specs=[
            dg.AssetSpec(
                names.key("online_performance"),
                deps=[
                    names.key("online_requests"),
                    names.key("features"),
                    names.key("predictions"),
                ],
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb"},
                code_version=version,
                metadata={"dagster/table_name": names.table_name("online_performance")},
                description=(
                    f"Per day and served model version of `{spec.name}`'s online traffic: the "
                    f"realized {metric} once labels arrived, the online scores' drift against the "
                    f"version's batch scores of the trailing {REFERENCE_DAYS} days, and how many "
                    "keys batch scoring scored alike."
                ),
            )
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def online_performance_asset(
        context: dg.AssetExecutionContext, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            days = online_performance(
                conn, spec, start, end, known_by=dt.datetime.now(), run_id=context.run_id
            )
        labelled = sum(d.labelled_rows for d in days)
        drifted = [d for d in days if d.score_drifted]
        return dg.MaterializeResult(
            metadata={
                **window_metadata(start, end),
                "rows": dg.MetadataValue.int(sum(d.rows for d in days)),
                "labelled_rows": dg.MetadataValue.int(labelled),
                "score_drifted_days": dg.MetadataValue.int(len({d.day for d in drifted})),
                "batch_matched_rows": dg.MetadataValue.int(sum(d.batch_matched_rows for d in days)),
                "preview": dg.MetadataValue.md(_performance_preview(days)),
            }
        )

    return [online_performance_asset]


def _performance_preview(days: list[OnlineDay], limit: int = 10) -> str:
    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    lines = [
        "| day | version | rows | labelled | metric | batch alike | score drift |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in days[-limit:]:
        drift = (
            "" if d.score_drifted is None else f"{d.score_drift_method} {cell(d.score_drift_score)}"
        )
        lines.append(
            f"| {d.day.isoformat()} | v{d.model_version} | {d.rows} | {d.labelled_rows} | "
            f"{d.metric} {cell(d.metric_value)} | {d.batch_matched_rows} | {drift} |"
        )
    return "\n".join(lines)
