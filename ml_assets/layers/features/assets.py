"""`reference_tables` and `features`: lookups loaded whole, and point-in-time features per day."""

import datetime as dt
import hashlib

import dagster as dg

from ml_assets.core.lineage import code_version
from ml_assets.core.partitions import daily_partitions, window, window_metadata
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.features.logic import data_version, write_features
from ml_assets.layers.features.query import load_feature_files
from ml_assets.layers.features.reference import load_reference_tables
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def build_reference_tables_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.names.key("reference_tables"),
        group_name=spec.name,
        kinds={"duckdb"},
        code_version=code_version(spec, "features"),
        pool=warehouse_pool(),
        description=(
            f"Lookup tables of `{spec.name}` ({', '.join(spec.lookups)}) loaded whole into "
            f"`{spec.name}.ref_<name>`, for the feature SQL to join to."
        ),
        metadata={
            "tables": dg.MetadataValue.json([spec.names.ref_table_name(n) for n in spec.lookups])
        },
    )
    def reference_tables(warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.get_connection() as conn:
            tables = load_reference_tables(conn, spec)
        combined = hashlib.sha256(",".join(t.checksum for t in tables).encode()).hexdigest()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(sum(t.rows for t in tables)),
                "tables": dg.MetadataValue.json(
                    {
                        t.name: {
                            "table": t.table,
                            "rows": t.rows,
                            "checksum": t.checksum,
                            "files": t.files,
                        }
                        for t in tables
                    }
                ),
                **{f"rows_{t.name}": dg.MetadataValue.int(t.rows) for t in tables},
                **{f"checksum_{t.name}": dg.MetadataValue.text(t.checksum) for t in tables},
            },
            # Source checksums are the data version: unchanged files, unchanged lookups.
            data_version=dg.DataVersion(combined[:16]),
        )

    return reference_tables


def build_features_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    section = spec.features
    files = load_feature_files(spec)
    partitions = daily_partitions(spec)
    # Day to day: a day's features also read the `lookback_days` validated days before it, but a
    # TimeWindowPartitionMapping reaching before the first partition needs a beta flag; the
    # lookback is recorded in the metadata instead.
    deps = [
        spec.names.key("validated"),
        *([spec.names.key("reference_tables")] if spec.lookups else []),
    ]

    @dg.multi_asset(
        name=spec.names.op("features"),
        specs=[
            dg.AssetSpec(
                spec.names.key("features"),
                deps=deps,
                group_name=spec.name,
                partitions_def=partitions,
                kinds={"duckdb"},
                code_version=code_version(
                    spec, "features", [f.path for f in files if not f.generated]
                ),
                description=(
                    f"Point-in-time features of `{spec.name}`, one row per validated row: only "
                    f"labels known {spec.label.delay_days} day(s) before each event are used."
                ),
                metadata={
                    "dagster/table_name": spec.names.table_name("features"),
                    "feature_columns": dg.MetadataValue.json(
                        {c: f.model_dump(exclude_none=True) for c, f in section.columns.items()}
                    ),
                    "feature_sql": dg.MetadataValue.json(
                        [str(f.path) for f in files if not f.generated]
                    ),
                    "declared_features": dg.MetadataValue.json(list(section.declared)),
                    "lookback_days": section.lookback_days,
                    "label_delay_days": spec.label.delay_days,
                },
            )
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=warehouse_pool(),
    )
    def features(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            days = write_features(
                conn,
                spec,
                files,
                start,
                end,
                run_id=context.run_id,
                featurized_at=dt.datetime.now(dt.UTC),
            )
            version = data_version(conn, spec, start, end)
        rows = sum(d.features for d in days)
        return dg.MaterializeResult(
            metadata={
                **window_metadata(start, end),
                "dagster/row_count": dg.MetadataValue.int(rows),
                "validated_rows": dg.MetadataValue.int(sum(d.validated for d in days)),
                "history_start": dg.MetadataValue.text(
                    (start - dt.timedelta(days=section.lookback_days)).isoformat()
                ),
                "data_version": dg.MetadataValue.text(version),
            }
        )

    return features


def build_features_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    """The features layer of a spec with a `features` section: lookups (if any), then features."""
    assets = [build_reference_tables_asset(spec)] if spec.lookups else []
    return [*assets, build_features_asset(spec)]
