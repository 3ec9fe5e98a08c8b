"""Weather features come from the latest observation at the origin at or before departure."""

import datetime as dt

from ml_assets_tests.layers.features.conftest import materialize_features, query

DAY = "2013-01-08"
WEATHER = ["temp", "humid", "wind_speed", "precip", "visib"]


def test_weather_is_the_latest_observation_at_or_before_departure(
    flights_home, flights_spec, instance
) -> None:
    # Without the same-day signals, whose departures share the `_max_lookup_time` audit column.
    columns = flights_spec.features.columns
    flights_spec = flights_spec.model_copy(
        update={
            "features": flights_spec.features.model_copy(
                update={
                    "columns": {
                        c: f for c, f in columns.items() if not (f.window and f.window.known_at)
                    }
                }
            )
        }
    )
    # Carve gaps into the record: JFK loses 10:00 and 11:00, EWR loses 06:00 to 14:00.
    query(
        "DELETE FROM flights.ref_weather WHERE month = 1 AND day = 8 AND "
        "((origin = 'JFK' AND hour IN (10, 11)) OR (origin = 'EWR' AND hour BETWEEN 6 AND 14))"
    )
    assert materialize_features(flights_spec, instance, DAY, checks=False).success

    # The reference answer, straight from ref_weather: the newest observation not after departure.
    rows = query(
        f"""
        WITH obs AS (
            SELECT origin, make_timestamp(year, month, day, hour, 0, 0) AS obs_at, {", ".join(WEATHER)}
            FROM flights.ref_weather),
        expected AS (
            SELECT v._key, v._event_time, v.origin,
                   (SELECT max(obs_at) FROM obs
                    WHERE obs.origin = v.origin AND obs.obs_at <= v._event_time) AS obs_at
            FROM flights.validated v WHERE v._partition_date = $d)
        SELECT e._key, e._event_time, e.origin, e.obs_at, f._max_lookup_time,
               [{", ".join(f"o.{w}" for w in WEATHER)}], [{", ".join(f"f.{w}" for w in WEATHER)}]
        FROM expected e JOIN flights.features f USING (_key)
        LEFT JOIN obs o ON o.origin = e.origin AND o.obs_at = e.obs_at
        ORDER BY e._key""",
        {"d": DAY},
    )
    assert len(rows) > 800
    for key, departs, _origin, at, used, observed, features in rows:
        assert at <= departs
        if departs - at <= dt.timedelta(hours=6):
            assert used == at and features == observed, key
        else:  # stale: unknown rather than yesterday's weather
            assert used is None and features == [None] * len(WEATHER), key

    by_case = {}
    for _, departs, origin, _at, used, *_ in rows:
        by_case.setdefault((origin, departs.hour, departs.minute == 0), set()).add(used)
    # A departure on the hour sees that hour's observation (at or before, inclusive).
    on_the_hour = [(o, h) for (o, h, exact) in by_case if exact and o == "LGA" and 7 <= h <= 20]
    assert on_the_hour
    for o, h in on_the_hour:
        assert by_case[(o, h, True)] == {dt.datetime(2013, 1, 8, h)}
    # JFK at 10:xx and 11:xx falls back to 09:00; at 12:xx it has 12:00 again.
    assert by_case[("JFK", 11, False)] == {dt.datetime(2013, 1, 8, 9)}
    assert by_case[("JFK", 12, False)] == {dt.datetime(2013, 1, 8, 12)}
    # EWR after 11:00 would reach back to 05:00, more than 6 hours: no weather.
    assert by_case[("EWR", 12, False)] == {None}
    assert by_case[("EWR", 8, False)] == {dt.datetime(2013, 1, 8, 5)}
