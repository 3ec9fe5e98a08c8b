"""`online_requests` and `online_summary`: the service's request log in the warehouse, per day."""

import math
from pathlib import Path

import dagster as dg

from ml_assets.core.lineage import code_version
from ml_assets.core.partitions import daily_partitions, window, window_metadata
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.requests.ingest import ingest_window, summarise_window
from ml_assets.resources.warehouse import Warehouse, warehouse_pool

LAYER_FILES = sorted(p for p in Path(__file__).parent.rglob("*") if p.suffix in {".py", ".sql"})


def _float(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.float(float("nan") if value is None else float(value))


def build_request_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    partitions = daily_partitions(spec)
    names = spec.names
    # The log's schema is the service's; the spec only names the dataset.
    version = code_version(spec, "online", LAYER_FILES)

    @dg.multi_asset(
        name=names.op("online_requests"),
        specs=[
            dg.AssetSpec(
                names.key("online_requests"),
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb", "json"},
                code_version=version,
                metadata={"dagster/table_name": names.table_name("online_requests")},
                description=(
                    f"Every online prediction of `{spec.name}` (request id, time, model version, "
                    "served by champion or canary, key, raw fields, score, decision, shadow "
                    f"score), ingested from the service's log (data/online/requests/{spec.name}/"
                    "<day>/) by event day; a run replaces its days."
                ),
            )
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def online_requests(
        context: dg.AssetExecutionContext, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            done = ingest_window(conn, spec, start, end, run_id=context.run_id)
        return dg.MaterializeResult(
            metadata={
                **window_metadata(start, end),
                "dagster/row_count": dg.MetadataValue.int(done.rows),
                "requests": dg.MetadataValue.int(done.requests),
                "log_files": dg.MetadataValue.int(done.files),
            }
        )

    @dg.multi_asset(
        name=names.op("online_summary"),
        specs=[
            dg.AssetSpec(
                names.key("online_summary"),
                deps=[names.key("online_requests")],
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb"},
                code_version=version,
                metadata={"dagster/table_name": names.table_name("online_summary")},
                description=(
                    f"Per day of `{spec.name}`'s online traffic: requests and rows, canary share "
                    "and fallbacks, latency p50/p99 per request, mean score, and the shadow "
                    "agreement rate (share of rows where the challenger decided as the served "
                    "model)."
                ),
            )
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def online_summary(
        context: dg.AssetExecutionContext, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            days = summarise_window(conn, spec, start, end, run_id=context.run_id)
        served = [d for d in days if d["requests"]]
        rows = sum(d["rows"] for d in days)
        shadow = sum(d["shadow_rows"] for d in days)
        agree = sum((d["shadow_agreement"] or 0.0) * d["shadow_rows"] for d in days)
        return dg.MaterializeResult(
            metadata={
                **window_metadata(start, end),
                "requests": dg.MetadataValue.int(sum(d["requests"] for d in days)),
                "rows": dg.MetadataValue.int(rows),
                "days_with_requests": dg.MetadataValue.int(len(served)),
                "shadow_rows": dg.MetadataValue.int(shadow),
                "shadow_agreement": _float(agree / shadow if shadow else None),
                "latency_p99_ms_worst_day": _float(
                    max((d["latency_p99_ms"] for d in served), default=None)
                ),
                "score_mean": _float(
                    sum(d["score_mean"] * d["rows"] for d in served) / rows if rows else math.nan
                ),
                "preview": dg.MetadataValue.md(_preview(days)),
            }
        )

    return [online_requests, online_summary]


def _preview(days: list[dict], limit: int = 10) -> str:
    head = "| day | requests | rows | p50 ms | p99 ms | score mean | shadow agreement |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for d in [d for d in days if d["requests"]][-limit:]:
        cells = [
            d["day"].isoformat(),
            d["requests"],
            d["rows"],
            *(
                "" if d[k] is None else f"{d[k]:.3f}"
                for k in ("latency_p50_ms", "latency_p99_ms", "score_mean", "shadow_agreement")
            ),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)
