"""A feature row for an event uses only what was known before it: later rows and labels change nothing."""

import datetime as dt
import math

import pandas as pd

from ml_assets.core.spec import load_spec
from ml_assets.layers.features.logic import KEY_COLUMNS, feature_types
from ml_assets_tests.conftest import FLIGHTS_SPEC
from ml_assets_tests.layers.features.conftest import materialize_features, query

DAY = "2013-01-08"
RATES = [f"{g}_delay_rate_{n}d" for g in ("carrier", "origin", "dest", "route") for n in (7, 28)]
# The bundled features counted from when a departure delay is known (the `known_at` windows).
SAME_DAY = [
    c for c, f in load_spec(FLIGHTS_SPEC).features.columns.items() if f.window and f.window.known_at
]


def feature_rows(day: str) -> dict[str, dict]:
    """Every stored value of a day's feature rows except when and by which run they were written."""
    rows = query(
        "SELECT * EXCLUDE (_featurized_at, _run_id) FROM flights.features "
        "WHERE _partition_date = $day ORDER BY _key",
        {"day": day},
    )
    columns = [
        r[0]
        for r in query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'features' "
            "AND column_name NOT IN ('_featurized_at', '_run_id') ORDER BY ordinal_position"
        )
    ]
    return {r[0]: dict(zip(columns, r, strict=True)) for r in rows}


def flip_label(key: str) -> None:
    query("UPDATE flights.validated SET _label = 1 - _label WHERE _key = $key", {"key": key})


def add_later_flights(base_key: str, hours_later: list[int]) -> set[str]:
    """Copies of a validated flight `hours_later` after it, all arriving late, added to validated."""
    for i, hours in enumerate(hours_later):
        query(
            """INSERT INTO flights.validated
               SELECT * REPLACE (
                   month(_event_time + to_hours($h)) AS month,
                   day(_event_time + to_hours($h)) AS day,
                   9000 + $i AS flight,
                   _event_time + to_hours($h) AS _event_time,
                   CAST(_event_time + to_hours($h) AS DATE) AS _partition_date,
                   1.0 AS _label,
                   concat_ws('|', year, month(_event_time + to_hours($h)),
                             day(_event_time + to_hours($h)), carrier, 9000 + $i, origin) AS _key)
               FROM flights.validated WHERE _key = $key""",
            {"h": hours, "i": i, "key": base_key},
        )
    return {k for (k,) in query("SELECT _key FROM flights.validated WHERE flight >= 9000")}


def test_future_rows_and_later_labels_change_no_past_feature(
    flights_home, either_form, instance
) -> None:
    assert materialize_features(either_form, instance, DAY, "2013-01-10", checks=False).success
    before, later_before = feature_rows(DAY), feature_rows("2013-01-10")
    # A midday event whose route has history, so its rates are real numbers.
    ((event, event_time),) = query(
        "SELECT _key, _event_time FROM flights.features WHERE _partition_date = $day "
        "AND hour(_event_time) = 12 AND route_delay_rate_28d IS NOT NULL ORDER BY _key LIMIT 1",
        {"day": DAY},
    )

    # New flights of the same route later that day and on the next two days, all arriving late...
    added = add_later_flights(event, hours_later=[3, 8, 24, 30, 48])
    assert len(added) == 5
    # ...and every label after the event corrected afterwards (here: flipped).
    query(
        "UPDATE flights.validated SET _label = 1 - _label WHERE _event_time > $t", {"t": event_time}
    )
    # The later partitions are rebuilt on the new data, then the event's own day again.
    assert materialize_features(
        either_form, instance, "2013-01-09", "2013-01-10", checks=False
    ).success
    assert materialize_features(either_form, instance, DAY, checks=False).success

    after = feature_rows(DAY)
    assert set(after) - set(before) == {k for k in added if k.startswith("2013|1|8|")}
    assert after[event] == before[event]
    # Every original row of the day keeps every feature and audit value bit for bit (only the
    # stored label of rows after the event moved, as it should), except that rows after the
    # first added flight has left may now count its departure delay in their same-day signals.
    (first_added_left,) = query(
        "SELECT min(_event_time + to_minutes(CAST(dep_delay AS BIGINT))) FROM flights.validated "
        "WHERE _key IN (SELECT unnest($k))",
        {"k": sorted(added)},
    )[0]
    same_day = {"_max_lookup_time", *SAME_DAY}
    unchanged = 0
    for key, row in before.items():
        ignore = {"_label": None}
        if row["_event_time"] >= first_added_left:
            ignore |= dict.fromkeys(same_day)
        else:
            unchanged += 1
        assert {**after[key], **ignore} == {**row, **ignore}, key
    assert unchanged > 0.3 * len(before)
    # Not vacuous: two days later the flipped labels are known and most rates did move.
    later_after = feature_rows("2013-01-10")
    moved = sum(
        later_after[k]["carrier_delay_rate_7d"] != row["carrier_delay_rate_7d"]
        for k, row in later_before.items()
    )
    assert moved > 0.9 * len(later_before)


def test_a_label_counts_only_once_it_is_known(flights_home, either_form, instance) -> None:
    assert materialize_features(either_form, instance, DAY, checks=False).success
    # An evening event, and two flights of its carrier: 12 hours and 2 days before it.
    ((event, event_time, carrier),) = query(
        "SELECT _key, _event_time, carrier FROM flights.validated "
        "WHERE _partition_date = $day AND hour(_event_time) = 20 AND carrier = 'UA' "
        "ORDER BY _key LIMIT 1",
        {"day": DAY},
    )

    def flight_before(hours: int) -> str:
        ((key, gap),) = query(
            "SELECT _key, $t - _event_time FROM flights.validated "
            "WHERE carrier = $c AND _label IS NOT NULL "
            "ORDER BY abs(epoch($t - to_hours($h) - _event_time)), _key LIMIT 1",
            {"c": carrier, "t": event_time, "h": hours},
        )
        assert abs(gap - dt.timedelta(hours=hours)) < dt.timedelta(hours=1)
        return key

    half_day, two_days = flight_before(12), flight_before(48)
    before = feature_rows(DAY)[event]

    # 12 hours before: its label is not known yet (delay 1 day), so nothing may move.
    flip_label(half_day)
    assert materialize_features(either_form, instance, DAY, checks=False).success
    assert feature_rows(DAY)[event] == before

    # 2 days before: known, so the carrier's 7- and 28-day rates move by exactly one label.
    flip_label(two_days)
    assert materialize_features(either_form, instance, DAY, checks=False).success
    after = feature_rows(DAY)[event]
    ((n7, n28),) = query(
        "SELECT count(_label) FILTER (WHERE _event_time >= $t - INTERVAL 7 DAYS), count(_label) "
        "FROM flights.validated WHERE carrier = $c "
        "AND _event_time BETWEEN $t - INTERVAL 28 DAYS AND $t - INTERVAL 1 DAY",
        {"c": carrier, "t": event_time},
    )
    ((new_label,),) = query("SELECT _label FROM flights.validated WHERE _key = $k", {"k": two_days})
    step = 1 if new_label == 1 else -1
    for name, n in (("carrier_delay_rate_7d", n7), ("carrier_delay_rate_28d", n28)):
        assert math.isclose(after[name] - before[name], step / n, rel_tol=1e-9), name


def assert_rates_match_a_brute_force_reference(spec) -> None:
    """The window SQL against a plain pandas reading of the definition, on a sample of rows."""
    delay = dt.timedelta(days=spec.label.delay_days)
    hist = pd.DataFrame(
        query("SELECT _event_time, carrier, origin, dest, _label FROM flights.validated"),
        columns=["t", "carrier", "origin", "dest", "label"],
    )
    sample = query(
        f"SELECT _key, _event_time, carrier, origin, dest, _max_history_time, {', '.join(RATES)} "
        "FROM flights.features WHERE _partition_date = $day ORDER BY hash(_key) LIMIT 40",
        {"day": DAY},
    )
    for key, t, carrier, origin, dest, max_history, *rates in sample:
        row = {"carrier": carrier, "origin": origin, "dest": dest}
        expected, latest = [], []
        for group in (["carrier"], ["origin"], ["dest"], ["origin", "dest"]):
            same = (hist[group] == pd.Series({c: row[c] for c in group})).all(axis=1)
            for days in (7, 28):
                frame = hist[same & hist.t.between(t - dt.timedelta(days=days), t - delay)]
                labelled = frame[frame.label.notna()]
                expected.append(labelled.label.mean() if len(labelled) else None)
                latest += list(labelled.t)
        for name, got, want in zip(RATES, rates, expected, strict=True):
            assert (got is None) == (want is None), (key, name)
            assert want is None or math.isclose(got, want, rel_tol=1e-12), (key, name, got, want)
        assert max_history == (max(latest) if latest else None), key


def test_rates_are_right_and_a_day_alone_equals_the_day_inside_a_range(
    flights_home, either_form, instance
) -> None:
    assert materialize_features(either_form, instance, DAY, checks=False).success
    assert_rates_match_a_brute_force_reference(either_form)
    alone = feature_rows(DAY)
    assert len(alone) > 800
    assert materialize_features(
        either_form, instance, "2013-01-05", "2013-01-11", checks=False
    ).success
    assert feature_rows(DAY) == alone
    # Numeric features are stored as DOUBLE and categorical ones as text, whatever the SQL said.
    types = dict(
        query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'features'"
        )
    )
    assert {c: types[c] for c in feature_types(either_form)} == feature_types(either_form)
    assert [c for c in types if c in KEY_COLUMNS] == list(KEY_COLUMNS)
