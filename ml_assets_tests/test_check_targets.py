"""A day's check record targets its partition's newest materialization: the direct read of the
event log's columns gives what Dagster's records give, on a real sqlite instance."""

from pathlib import Path

import dagster as dg

from ml_assets.core.check_targets import _fetched, latest_materializations
from ml_assets.core.partitions import daily_partitions
from ml_assets.core.spec import load_spec
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets_tests.conftest import FLIGHTS_SPEC

PARTITIONS = daily_partitions(load_spec(FLIGHTS_SPEC))


KEY = dg.AssetKey(["targets", "daily"])


@dg.multi_asset(  # one spec: its backfill_policy is not a beta parameter
    specs=[dg.AssetSpec(KEY, partitions_def=PARTITIONS)],
    partitions_def=PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def daily() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 1})


def test_the_newest_materialization_of_each_partition(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        first = dg.materialize(
            [daily], instance=instance, tags={RANGE_START: "2013-01-01", RANGE_END: "2013-01-05"}
        )
        again = dg.materialize([daily], instance=instance, partition_key="2013-01-03")
        days = [f"2013-01-0{d}" for d in range(1, 8)]  # the 6th and 7th were never materialized
        found = latest_materializations(instance, KEY, days)
        assert found == _fetched(instance, KEY, days)
        assert sorted(found) == days[:5]
        assert found["2013-01-03"].run_id == again.run_id
        assert {found[d].run_id for d in days[:5] if d != "2013-01-03"} == {first.run_id}
        newest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=["2013-01-03"]), limit=1
        ).records[0]
        assert (found["2013-01-03"].storage_id, found["2013-01-03"].timestamp) == (
            newest.storage_id,
            newest.timestamp,
        )
