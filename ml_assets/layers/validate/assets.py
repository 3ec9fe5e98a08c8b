"""`validated` and `quarantine`: the data contract enforced in SQL, one transaction per window."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from ml_assets.core.lineage import code_version
from ml_assets.core.partitions import daily_partitions, window, window_metadata
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.validate.logic import reason_counts, write_validated
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def build_validate_assets(spec: DatasetSpec) -> dg.AssetsDefinition:
    partitions = daily_partitions(spec)
    version = code_version(spec, "validate")
    contract = {c: col.model_dump(exclude_none=True) for c, col in spec.contract.columns.items()}

    @dg.multi_asset(
        name=spec.names.op("validate"),
        specs=[
            dg.AssetSpec(
                spec.names.key("validated"),
                deps=[spec.names.key("raw")],
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb"},
                code_version=version,
                description=f"Rows of `{spec.name}` that meet the data contract, typed, with label and key.",
                metadata={
                    "dagster/table_name": spec.names.table_name("validated"),
                    "contract": dg.MetadataValue.json(contract),
                    "unique_key": dg.MetadataValue.json(spec.contract.unique_key),
                },
            ),
            dg.AssetSpec(
                spec.names.key("quarantine"),
                deps=[spec.names.key("raw")],
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb"},
                code_version=version,
                description=f"Rows of `{spec.name}` that break the contract: every raw column plus reason codes.",
                metadata={"dagster/table_name": spec.names.table_name("quarantine")},
            ),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def validate(
        context: dg.AssetExecutionContext, warehouse: Warehouse
    ) -> Iterator[dg.MaterializeResult]:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            days = write_validated(
                conn, spec, start, end, run_id=context.run_id, validated_at=dt.datetime.now(dt.UTC)
            )
            reasons = reason_counts(conn, spec, start, end)
        raw_rows = sum(d.raw for d in days)
        valid = sum(d.validated for d in days)
        quarantined = sum(d.quarantined for d in days)
        yield dg.MaterializeResult(
            asset_key=spec.names.key("validated"),
            metadata={
                **window_metadata(start, end),
                "dagster/row_count": dg.MetadataValue.int(valid),
                "raw_rows": dg.MetadataValue.int(raw_rows),
                "pass_rate": dg.MetadataValue.float(valid / raw_rows if raw_rows else 1.0),
            },
        )
        yield dg.MaterializeResult(
            asset_key=spec.names.key("quarantine"),
            metadata={
                **window_metadata(start, end),
                "dagster/row_count": dg.MetadataValue.int(quarantined),
                "reasons": dg.MetadataValue.json(
                    [
                        {"reason": r.reason, "rows": r.rows, "sample_keys": r.sample_keys}
                        for r in reasons
                    ]
                ),
            },
        )

    return validate
