"""A feature that peeks at labels not yet known fails the blocking `leakage` check and blocks downstream."""

import dagster as dg
import pytest

from ml_assets.core.partitions import daily_partitions
from ml_assets_tests.layers.features.conftest import checks_by_name, materialize_features, query

DAY = "2013-01-08"
# Every rate window ends at the current row instead of `label_delay_days` before it: each flight's
# rates include its own label and those of flights at the same minute.
LEAKY_FRAMES = {"to_days(CAST($label_delay_days AS INTEGER)) PRECEDING": "CURRENT ROW"}
# ...and the audit column claims the labels used were two days old.
LYING_AUDIT = {
    "AS _max_history_time": "AS _honest_max_history_time, "
    "_event_time - INTERVAL 2 DAYS AS _max_history_time"
}


def downstream_of(spec) -> dg.AssetsDefinition:
    """Stands in for the training set: it must not run on leaky features."""
    partitions = daily_partitions(spec)

    @dg.multi_asset(
        name="flights__downstream",
        specs=[dg.AssetSpec([spec.name, "downstream"], deps=[spec.names.key("features")])],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def downstream() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    return downstream


@pytest.mark.parametrize("audit", ["honest", "lying"])
def test_leaky_features_fail_the_blocking_check(flights_home, spec_copy, instance, audit) -> None:
    spec = spec_copy(edit=LEAKY_FRAMES | (LYING_AUDIT if audit == "lying" else {}))
    result = materialize_features(spec, instance, DAY, extra=[downstream_of(spec)])

    assert not result.success
    leakage = checks_by_name(result)["leakage"]
    assert not leakage.passed and leakage.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in leakage.metadata.items()}
    (probe,) = meta["probe"]
    if audit == "honest":
        # The audit column shows labels from the event's own minute: every labelled row leaks.
        labelled = query(
            "SELECT count(*) FROM flights.validated WHERE _partition_date = $d AND _label IS NOT NULL",
            {"d": DAY},
        )[0][0]
        assert meta["leaky_rows"] >= labelled
        assert meta["closest_history_gap_hours"] == "0.00"
    else:
        # The audit column lies, but scrambling the day's labels still moves the features.
        assert meta["leaky_rows"] == 0
    assert probe["day"] == DAY and probe["changed_rows"] > 0.9 * probe["rows"]
    # Leaky rows were written (the check reports them), but nothing downstream ran on them.
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert materialized == {spec.names.key("features")}
    assert not result.is_node_success("flights__downstream")


def test_the_bundled_features_pass_the_check_with_a_day_of_margin(
    flights_home, either_form, instance
) -> None:
    result = materialize_features(either_form, instance, "2013-01-07", "2013-01-08")
    assert result.success
    leakage = checks_by_name(result)["leakage"]
    assert leakage.passed
    meta = {k: v.value for k, v in leakage.metadata.items()}
    assert meta["leaky_rows"] == 0 and meta["rows_with_history"] > 0.95 * meta["rows"]
    assert float(meta["closest_history_gap_hours"]) >= 24.0
    assert [p["day"] for p in meta["probe"]] == ["2013-01-07", "2013-01-08"]
    assert all(p["changed_rows"] == 0 and p["rows"] > 800 for p in meta["probe"])
