"""Declared lookup features: the online path's rows found in sorted arrays equal the offline
join's, row for row, where they differ most easily: weather gone stale, a plane missing from the
table, a flight without a tail number, departures on the hour of an observation."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from ml_assets.layers.features.query import load_feature_files, parameters, render_file
from ml_assets.layers.online import store
from ml_assets.layers.online.compute import OnlineFeatures
from ml_assets.layers.online.parity import request_rows, same
from ml_assets_tests.serving.conftest import SCORED_DAY

pytestmark = pytest.mark.slow

LOOKUP_FEATURES = ["plane_age", "temp", "humid", "wind_speed", "precip", "visib"]
# EWR's observations of 06:00 to 14:00 removed on the scored day: its departures then see the
# 05:00 weather until 11:00 and none (older than 6 hours) from 11:00 on.
GAP = "TRY_CAST(month AS INT) = 3 AND TRY_CAST(day AS INT) = 10 AND origin = 'EWR' AND TRY_CAST(hour AS INT) BETWEEN 6 AND 14"


def test_online_lookups_equal_the_offline_join(world, tmp_path) -> None:
    snapshot = tmp_path / "snapshot"
    shutil.copytree(store.current_snapshot("flights", world.home / "data" / "online"), snapshot)
    weather = snapshot / "lookups" / "weather.parquet"
    with duckdb.connect() as conn:
        conn.execute(
            f"COPY (SELECT * FROM read_parquet($p) WHERE NOT ({GAP})) TO '{tmp_path}/w.parquet'",
            {"p": str(weather)},
        )
    shutil.move(tmp_path / "w.parquet", weather)

    warehouse = world.home / "data" / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        frame = conn.execute(
            "SELECT * FROM flights.validated WHERE _partition_date = ? ORDER BY _key",
            [SCORED_DAY],
        ).df()
    # A few flights without a tail number, and a few with one no table row has.
    frame.loc[frame.index[:5], "tailnum"] = None
    frame.loc[frame.index[5:10], "tailnum"] = "N0NE"
    # And a few EWR flights moved to 11:00, exactly 6 hours after the 05:00 observation.
    boundary = frame.index[frame["origin"].eq("EWR")][-5:]
    frame.loc[boundary, ["sched_dep_time", "hour", "minute"]] = [1100, 11, 0]
    frame.loc[boundary, "_event_time"] = dt.datetime(2013, 3, 10, 11)

    # Offline: the generated join over the same (carved) lookups and these validated rows.
    spec = world.spec
    (lookups,) = [f for f in load_feature_files(spec) if f.path.name.endswith("#features.lookups")]
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("CREATE SCHEMA flights")
        for name in spec.lookups:
            conn.execute(
                f"CREATE TABLE {spec.names.ref_table(name)} AS SELECT * FROM read_parquet($p)",
                {"p": str(snapshot / "lookups" / f"{name}.parquet")},
            )
        conn.register("_frame", frame)
        conn.execute("CREATE TABLE rows AS SELECT * FROM _frame")
        sql = render_file(lookups, spec, "rows")
        offline = conn.execute(
            f"SELECT _key, {', '.join(LOOKUP_FEATURES)}, _max_lookup_time FROM ({sql})",
            parameters(sql, spec, SCORED_DAY, SCORED_DAY),
        ).df()
    # As the features table stores them: numeric features are DOUBLE (an age comes as BIGINT).
    offline = offline.set_index("_key").loc[frame["_key"]].astype({"plane_age": "float64"})

    online_path = OnlineFeatures(spec, snapshot)
    online = online_path.features(request_rows(frame, spec, online_path.fields)).set_index("_key")
    assert list(online.index) == list(frame["_key"])

    differing = {
        (feature, key)
        for feature in LOOKUP_FEATURES
        for key, a, b in zip(frame["_key"], offline[feature], online[feature], strict=True)
        if not same(a, b)
    }
    assert differing == set()

    # Not vacuous: each case the join must get right occurs on this day.
    at_ewr = frame["origin"].eq("EWR").to_numpy()
    hour = frame["_event_time"].dt.hour.to_numpy()
    stale = at_ewr & (hour >= 12) & (hour <= 14)
    assert stale.sum() > 20 and offline["temp"][stale].isna().all()
    carried = at_ewr & (hour >= 6) & (hour < 11) | frame.index.isin(boundary)
    assert carried.sum() > 20
    assert offline["temp"].loc[frame["_key"][boundary]].notna().all()
    five = offline["_max_lookup_time"][carried]
    assert (five == dt.datetime(2013, 3, 10, 5)).all()
    on_the_hour = (frame["_event_time"].dt.minute == 0).to_numpy()
    assert (on_the_hour & offline["temp"].notna().to_numpy()).sum() > 20
    assert offline["plane_age"].iloc[:10].isna().all()
    assert offline["plane_age"].notna().sum() > 0.8 * len(frame)
