"""The layer's assets as Dagster sees them: keys, deps, metadata, and a user dataset's own SQL."""

import gc
import warnings

import dagster as dg
import yaml

from ml_assets.core.spec import load_spec
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets.layers.features.assets import (
    build_features_assets,
)
from ml_assets.layers.ingest.files import resolve_source, sha256
from ml_assets.resources.warehouse import warehouse_resource
from ml_assets_tests.layers.features.conftest import checks_by_name, materialize_features, query

ORDERS_FEATURES_SQL = """
-- A user's features, no Python: each customer's mean delivery time over the 28 days of orders
-- whose delivery is already known (label.delay_days = 7).
SELECT _key, amount, status,
       avg(_label) OVER known AS customer_delivery_days_28d,
       max(_event_time) FILTER (WHERE _label IS NOT NULL) OVER known AS _max_history_time
FROM {validated}
WINDOW known AS (PARTITION BY customer ORDER BY _event_time RANGE BETWEEN
    INTERVAL 28 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING)
"""


def test_definitions_with_the_features_layer_load_without_warnings(home, flights_spec) -> None:
    gc.collect()  # earlier tests' garbage warns when collected; count only this load's warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_defs([flights_spec])  # the factory wires the features layer
        dg.Definitions.validate_loadable(defs)
        graph = defs.get_repository_def().asset_graph
    assert [str(w.message) for w in caught] == []
    features = graph.get(flights_spec.names.key("features"))
    assert set(features.parent_keys) == {
        flights_spec.names.key("validated"),
        flights_spec.names.key("reference_tables"),
    }
    assert features.partitions_def == graph.get(flights_spec.names.key("validated")).partitions_def
    assert not graph.get(flights_spec.names.key("reference_tables")).is_partitioned
    checks = {
        k.name for k in graph.asset_check_keys if k.asset_key == flights_spec.names.key("features")
    }
    assert checks == {"leakage", "null_rates", "ranges", "row_count_matches_validated"}


def test_reference_tables_record_rows_and_checksums(flights_home, flights_spec, instance) -> None:
    reference, _ = build_features_assets(flights_spec)
    result = dg.materialize(
        [reference], instance=instance, resources={"warehouse": warehouse_resource()}
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    tables = event.materialization.metadata["tables"].value
    assert set(tables) == set(flights_spec.lookups) == {"weather", "planes", "airports"}
    for name, source in flights_spec.lookups.items():
        (file,) = resolve_source(source)
        assert tables[name]["checksum"] == sha256(file.path)
        assert tables[name]["rows"] == query(f"SELECT count(*) FROM flights.ref_{name}")[0][0] > 0
    assert event.materialization.tags["dagster/data_version"]


def test_a_user_dataset_brings_its_own_feature_sql(home, orders_spec, instance) -> None:
    raw = yaml.safe_load(orders_spec.path.read_text())
    raw["features"] = {
        "sql": ["features/orders.sql"],
        "lookback_days": 28,
        "columns": {
            "amount": {"kind": "numeric", "min": 0},
            "status": {"kind": "categorical"},
            "customer_delivery_days_28d": {"kind": "numeric", "max_null_rate": 1.0},
        },
    }
    (orders_spec.path.parent / "features").mkdir()
    (orders_spec.path.parent / "features" / "orders.sql").write_text(ORDERS_FEATURES_SQL)
    orders_spec.path.write_text(yaml.safe_dump(raw, sort_keys=False))
    spec = load_spec(orders_spec.path)
    assert [a.key for a in build_features_assets(spec)] == [
        spec.names.key("features")
    ]  # no lookups

    daily = build_defs([spec]).resolve_job_def("orders__daily_layers")
    assert daily.execute_in_process(
        instance=instance, tags={RANGE_START: "2024-01-01", RANGE_END: "2024-01-03"}
    ).success
    result = materialize_features(spec, instance, "2024-01-01", "2024-01-03")
    assert result.success
    assert all(c.passed for c in checks_by_name(result).values())
    rows = query(
        "SELECT _key, amount, status, _label, _label_known_at - _event_time "
        "FROM orders.features ORDER BY _key::INTEGER"
    )
    validated = query(
        "SELECT _key, amount, status, _label FROM orders.validated ORDER BY _key::INTEGER"
    )
    assert [r[:4] for r in rows] == validated and len(rows) == 15
    assert {r[4].days for r in rows} == {7}
