"""The `raw` asset: one day of source rows per partition, with source files and checksums."""

import datetime as dt
from pathlib import Path

import dagster as dg
from pydantic import Field

from ml_assets.core.lineage import code_version
from ml_assets.core.partitions import daily_partitions, window, window_metadata
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.ingest.raw import write_raw
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


class RawConfig(dg.Config):
    landing_files: list[str] = Field(
        default_factory=list,
        description="Landing files to add to these partitions (set by the landing sensor).",
    )


def build_raw_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    # multi_asset with one spec: same asset, and its backfill_policy is not a beta parameter.
    @dg.multi_asset(
        name=spec.names.op("raw"),
        specs=[
            dg.AssetSpec(
                spec.names.key("raw"),
                group_name=spec.name,
                partitions_def=daily_partitions(spec),
                kinds={"duckdb"},
                code_version=code_version(spec, "ingest"),
                description=f"Source rows of `{spec.name}` for each day, as read (text), with file and checksum.",
                metadata={
                    "dagster/table_name": spec.names.table_name("raw"),
                    "spec_file": str(spec.path),
                },
            )
        ],
        partitions_def=daily_partitions(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def raw(
        context: dg.AssetExecutionContext, config: RawConfig, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            written = write_raw(
                conn,
                spec,
                start,
                end,
                run_id=context.run_id,
                ingested_at=dt.datetime.now(dt.UTC),
                landing=[Path(p) for p in config.landing_files],
            )
        empty = [d.isoformat() for d, n in written.rows_per_day.items() if n == 0]
        return dg.MaterializeResult(
            metadata={
                **window_metadata(start, end),
                "dagster/row_count": dg.MetadataValue.int(written.rows),
                "empty_days": dg.MetadataValue.json(empty),
                "source_files": dg.MetadataValue.json(written.files),
                "source_checksums": dg.MetadataValue.text(
                    ",".join(sorted({f["checksum"] for f in written.files}))
                ),
                # Rows of the files read that fit no partition: per file, not per window.
                "rejected_rows": dg.MetadataValue.int(sum(written.rejected.values())),
                "rejected_by_reason": dg.MetadataValue.json(written.rejected),
                "rejected_table": dg.MetadataValue.text(
                    f"{spec.name}.{'stream_quarantine' if spec.source.kafka else 'rejected_rows'}"
                ),
            }
        )

    return raw
