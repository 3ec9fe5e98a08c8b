"""`online_features`: a snapshot of what serving needs, published only when it matches offline."""

from collections.abc import Iterator

import dagster as dg

from ml_assets.core.lineage import code_version
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.online import store
from ml_assets.layers.online.build import build_snapshot, newest_features_day
from ml_assets.layers.online.compute import OnlineFeatures
from ml_assets.layers.online.parity import check_parity
from ml_assets.resources.warehouse import Warehouse, warehouse_pool

PARITY = "training_serving_parity"


class OnlineConfig(dg.Config):
    parity_rows: int = 300


def build_online_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    key = spec.names.key("online_features")
    deps = [
        spec.names.key("features"),
        spec.names.key("validated"),
        *([spec.names.key("reference_tables")] if spec.lookups else []),
    ]

    @dg.asset(
        key=key,
        deps=deps,
        group_name=spec.name,
        kinds={"parquet"},
        code_version=code_version(spec, "online"),
        pool=warehouse_pool(),
        # A snapshot that fails parity is not published, and nothing is materialized.
        output_required=False,
        check_specs=[
            dg.AssetCheckSpec(
                PARITY,
                asset=key,
                blocking=True,
                description="A sample of the newest day's offline feature rows, recomputed "
                "through the online path from their validated rows (no label), is equal to "
                "float tolerance; the snapshot is published only if it is.",
            )
        ],
        description=(
            f"The online feature store of `{spec.name}` (data/online/{spec.name}/): per-entity "
            "recent values of every window feature, the lookups, the feature schema and the "
            "lineage of rows scored in batch, as a Parquet snapshot swapped in atomically."
        ),
    )
    def online_features(
        context: dg.AssetExecutionContext, config: OnlineConfig, warehouse: Warehouse
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        with warehouse.get_connection() as conn:
            as_of = newest_features_day(conn, spec)
            if as_of is None:
                raise dg.Failure(f"{spec.names.table_name('features')} is empty: nothing to serve")
            building = store.new_snapshot_dir(spec.name)
            try:
                snapshot = store.finish(building, build_snapshot(conn, spec, building, as_of))
            except BaseException:
                store.discard(building)
                raise
            parity = check_parity(
                conn, spec, OnlineFeatures(spec, snapshot), as_of, rows=config.parity_rows
            )
        check = dg.AssetCheckResult(
            check_name=PARITY,
            passed=parity.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "day": dg.MetadataValue.text(as_of.isoformat()),
                "rows": dg.MetadataValue.int(parity.rows),
                "mismatched_features": dg.MetadataValue.json(parity.mismatched),
                "mismatched_samples": dg.MetadataValue.json(parity.samples),
                "snapshot": dg.MetadataValue.text(snapshot.name),
            },
        )
        if not parity.passed:
            store.discard(snapshot)
            context.log.error(
                f"online snapshot not published: parity failed for {sorted(parity.mismatched)}"
            )
            yield check
            return
        store.publish(snapshot)
        manifest = store.read_manifest(snapshot)
        yield dg.MaterializeResult(
            metadata={
                "snapshot": dg.MetadataValue.path(str(snapshot)),
                "as_of": dg.MetadataValue.text(manifest["as_of"]),
                "history_start": dg.MetadataValue.text(manifest["history_start"]),
                "stream_rows": dg.MetadataValue.json(manifest["stream_rows"]),
                "lookup_rows": dg.MetadataValue.json(manifest["lookup_rows"]),
                "provenance_rows": dg.MetadataValue.int(manifest["provenance_rows"] or 0),
            },
            data_version=dg.DataVersion(snapshot.name),
        )
        yield check

    return [online_features]
