"""Declared features: the generated SQL equals the hand-written features, and respects time."""

import datetime as dt

import duckdb
import pytest
import yaml

from ml_assets import settings
from ml_assets.core.spec import SpecError, load_spec, read_spec_mapping
from ml_assets.layers.features.logic import (
    CHUNK_DAYS_ENV,
    chunks,
    feature_types,
    write_features,
)
from ml_assets.layers.features.query import load_feature_files
from ml_assets_tests.conftest import FLIGHTS_SPEC

FIRST, LAST = dt.date(2013, 1, 1), dt.date(2013, 1, 12)
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def build(spec) -> dict[str, tuple]:
    """Features of FIRST..LAST written with the layer's own function, by key."""
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        write_features(
            conn, spec, load_feature_files(spec), FIRST, LAST, run_id="t", featurized_at=NOW
        )
        columns = ", ".join(["_key", *feature_types(spec), "_max_history_time", "_max_lookup_time"])
        rows = conn.execute(f"SELECT {columns} FROM flights.features ORDER BY _key").fetchall()
        conn.execute("DROP TABLE flights.features")
    return {r[0]: r[1:] for r in rows}


def test_the_declared_flights_features_equal_the_hand_written_ones(
    flights_home, flights_spec, spec_copy
) -> None:
    declared_files = load_feature_files(flights_spec)
    # Declared: the row features and windows, then the lookups; no SQL file.
    assert [f.generated for f in declared_files] == [True, True]
    declared = build(flights_spec)
    hand_written = build(spec_copy())
    assert len(declared) > 10_000 and declared.keys() == hand_written.keys()
    names = [*feature_types(flights_spec), "_max_history_time", "_max_lookup_time"]
    differing = {
        name: key
        for key, row in declared.items()
        for name, a, b in zip(names, row, hand_written[key], strict=True)
        if a != b
    }
    assert differing == {}
    # Not vacuous: the rates and the audit column are filled on almost every row.
    rate = names.index("route_delay_rate_28d")
    assert sum(r[rate] is not None for r in declared.values()) > 0.9 * len(declared)


def test_a_range_written_in_chunks_equals_one_query(
    flights_home, flights_spec, monkeypatch
) -> None:
    """Chunks bound the window query's memory; each reads its own lookback, so every value of
    every row is the one a single query over the whole range gives."""
    monkeypatch.setenv(CHUNK_DAYS_ENV, "1000")
    whole = build(flights_spec)
    monkeypatch.setenv(CHUNK_DAYS_ENV, "5")  # 12 days: 5 + 5 + 2
    chunked = build(flights_spec)
    assert len(whole) > 10_000 and chunked == whole


def test_chunks_cover_the_range_once() -> None:
    assert chunks(FIRST, LAST, 5) == [
        (FIRST, dt.date(2013, 1, 5)),
        (dt.date(2013, 1, 6), dt.date(2013, 1, 10)),
        (dt.date(2013, 1, 11), LAST),
    ]
    assert chunks(FIRST, LAST, 100) == [(FIRST, LAST)]
    assert chunks(FIRST, FIRST, 1) == [(FIRST, FIRST)]


def write_variant(home, columns: dict, delay_days: int | None = None, lookups: dict | None = None):
    """The flights spec with only the given declared features (no SQL file)."""
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw["features"] = {"lookback_days": 28, "columns": columns, "lookups": lookups or {}}
    raw["monitoring"]["expected_drift"] = []
    if delay_days is not None:
        raw["label"]["delay_days"] = delay_days
    path = home / "specs" / "flights.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_spec(path)


def test_counts_sums_and_same_day_windows_read_only_earlier_rows(flights_home) -> None:
    spec = write_variant(
        flights_home,
        {
            "carrier": {"kind": "categorical", "column": "carrier"},
            "weekend": {"kind": "numeric", "calendar": "is_weekend"},
            "flights_3h": {
                "kind": "numeric",
                "window": {"agg": "count", "of": "*", "by": ["origin"], "hours": 3},
            },
            "distance_sum_1d": {
                "kind": "numeric",
                "window": {"agg": "sum", "of": "distance", "by": ["carrier"], "days": 1},
            },
            "labels_2d": {
                "kind": "numeric",
                "window": {"agg": "count", "of": "label", "by": ["carrier"], "days": 2},
            },
        },
    )
    got = build(spec)
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        rows = conn.execute(
            "SELECT _key, _event_time, origin, carrier, distance, _label FROM flights.validated"
        ).fetchall()
    sample = sorted(got)[:: max(1, len(got) // 300)]
    for key in sample:
        _, t, origin, carrier, _, _ = next(r for r in rows if r[0] == key)
        if t.date() < FIRST or t.date() > LAST:
            continue
        earlier = [r for r in rows if r[0] != key]
        want_count = sum(
            1 for r in earlier if r[2] == origin and t - dt.timedelta(hours=3) <= r[1] <= t
        )
        want_sum = sum(
            r[4] for r in earlier if r[3] == carrier and t - dt.timedelta(days=1) <= r[1] <= t
        )
        want_labels = sum(
            1
            for r in rows
            if r[3] == carrier
            and r[5] is not None
            and t - dt.timedelta(days=2) <= r[1] <= t - dt.timedelta(days=1)
        )
        weekend, count_3h, distance_1d, labels_2d, max_history, _ = got[key][1:]
        assert weekend == (1 if t.isoweekday() >= 6 else 0), key
        assert count_3h == want_count, key
        assert distance_1d == pytest.approx(want_sum or None), key
        assert labels_2d == want_labels, key
        assert max_history is None or max_history <= t - dt.timedelta(days=1), key


def test_with_no_label_delay_a_row_never_reads_its_own_label(flights_home) -> None:
    spec = write_variant(
        flights_home,
        {
            "own_rate": {
                "kind": "numeric",
                "window": {"agg": "mean", "of": "label", "by": ["carrier", "flight"], "days": 1},
            }
        },
        delay_days=0,
    )
    got = build(spec)
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        # A carrier's flight number flies once a day: alone in its 1-day frame on most days, so a
        # frame that kept the current row would return the row's own label.
        alone = conn.execute(
            """SELECT _key FROM flights.validated v
               WHERE _label IS NOT NULL AND _partition_date BETWEEN $first AND $last
                 AND NOT EXISTS (SELECT 1 FROM flights.validated o
                     WHERE o.carrier = v.carrier AND o.flight = v.flight AND o._key <> v._key
                       AND o._event_time BETWEEN v._event_time - INTERVAL 1 DAY AND v._event_time)""",
            {"first": FIRST, "last": LAST},
        ).fetchall()
    assert len(alone) > 100
    assert all(got[key][0] is None for (key,) in alone)


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        (
            {
                "kind": "numeric",
                "window": {"agg": "mean", "of": "tailnum", "by": ["carrier"], "days": 7},
            },
            "needs a numeric column",
        ),
        (
            {
                "kind": "numeric",
                "window": {"agg": "mean", "of": "label", "by": ["gate"], "days": 7},
            },
            "'gate' is not a contract column",
        ),
        (
            {
                "kind": "numeric",
                "window": {"agg": "mean", "of": "label", "by": ["carrier"], "hours": 12},
            },
            "no label of the last 12:00:00 is known yet",
        ),
        (
            {"kind": "numeric", "window": {"agg": "mean", "by": ["carrier"], "days": 60}},
            "at most lookback_days",
        ),
        ({"kind": "numeric", "column": "distance", "calendar": "hour"}, "at most one of"),
        ({"kind": "numeric"}, "no 'sql' file"),
    ],
)
def test_a_wrong_declaration_fails_when_the_spec_loads(home, feature, message) -> None:
    with pytest.raises(SpecError, match=message):
        write_variant(home, {"f": feature})


PLANES = {"planes": {"key": {"tailnum": "tailnum"}}}
AGE = {"kind": "numeric", "lookup": {"join": "planes", "value": "make_date(year, 1, 1)"}}


@pytest.mark.parametrize(
    ("feature", "lookups", "message"),
    [
        (
            {**AGE, "lookup": {"join": "aircraft", "value": "year"}},
            PLANES,
            r"\['aircraft'\]: not in",
        ),
        (
            AGE,
            {"planes": {"table": "fleet", "key": {"tailnum": "tailnum"}}},
            "no table 'fleet' in `lookups`",
        ),
        (AGE, {"planes": {"key": {"registration": "tailnum"}}}, "'registration' is not a contract"),
        (AGE, {"planes": {"key": {"tailnum": "tailnum"}, "max_age_hours": 6}}, "only with 'time'"),
        (
            {"kind": "categorical", "lookup": {**AGE["lookup"], "age": "year"}},
            PLANES,
            "an age is numeric",
        ),
        ({**AGE, "column": "distance"}, PLANES, "at most one of"),
    ],
)
def test_a_wrong_lookup_fails_when_the_spec_loads(home, feature, lookups, message) -> None:
    with pytest.raises(SpecError, match=message):
        write_variant(home, {"f": feature}, lookups=lookups)


def test_a_lookup_finds_one_row_per_event_chosen_by_first_by(flights_home) -> None:
    """A key twice in the table never multiplies events: `first_by` picks the row; an event
    whose key is NULL, or absent from the table, has no value."""
    spec = write_variant(
        flights_home,
        {
            "plane_age": {
                "kind": "numeric",
                "lookup": {
                    "join": "planes",
                    "value": "make_date(TRY_CAST(year AS INTEGER), 1, 1)",
                    "age": "year",
                },
            }
        },
        lookups={
            "planes": {"key": {"tailnum": "tailnum"}, "first_by": "-TRY_CAST(year AS INTEGER)"}
        },
    )
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        (tail, year), *_ = conn.execute(
            """SELECT tailnum, TRY_CAST(year AS INTEGER) FROM flights.ref_planes p
               WHERE TRY_CAST(year AS INTEGER) < 2000 AND tailnum IN (
                   SELECT tailnum FROM flights.validated WHERE _partition_date = $d)
               ORDER BY tailnum""",
            {"d": FIRST},
        ).fetchall()
        # The same plane again, built later: the newer row wins, the older is ignored.
        conn.execute(
            "INSERT INTO flights.ref_planes BY NAME SELECT * REPLACE (CAST($y AS VARCHAR) AS year) "
            "FROM flights.ref_planes WHERE tailnum = $t",
            {"y": year + 5, "t": tail},
        )
        validated = conn.execute(
            "SELECT _key, tailnum FROM flights.validated WHERE _partition_date BETWEEN $a AND $b",
            {"a": FIRST, "b": LAST},
        ).fetchall()
    got = build(spec)
    assert len(got) == len(validated)
    tails = dict(validated)
    ages = {got[k][0] for k, t in tails.items() if t == tail}
    assert ages == {2013 - (year + 5)}
    assert all(got[k][0] is None for k, t in tails.items() if t is None)
    assert sum(t is None for t in tails.values()) > 0


DEPARTED = "_event_time + to_minutes(CAST(dep_delay AS BIGINT))"


def test_a_value_counts_from_when_it_is_known(flights_home) -> None:
    """Same-day signals: an earlier flight's departure delay is known once it has departed."""
    spec = write_variant(
        flights_home,
        {
            "origin_dep_delay_3h": {
                "kind": "numeric",
                "window": {
                    "agg": "mean",
                    "of": "dep_delay",
                    "by": ["origin"],
                    "hours": 3,
                    "known_at": DEPARTED,
                },
            },
            "origin_departed_1h": {
                "kind": "numeric",
                "window": {
                    "agg": "count",
                    "of": "dep_delay",
                    "by": ["origin"],
                    "hours": 1,
                    "known_at": DEPARTED,
                },
            },
        },
    )
    got = build(spec)
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        rows = conn.execute(
            "SELECT _key, _event_time, origin, dep_delay FROM flights.validated"
        ).fetchall()
    tick = dt.timedelta(microseconds=1)
    arrivals = [
        (origin, max(t + dt.timedelta(minutes=int(delay)), t + tick), delay)
        for _, t, origin, delay in rows
        if delay is not None
    ]
    sample = sorted(got)[:: max(1, len(got) // 300)]
    early_departures_seen = 0
    for key in sample:
        _, t, origin, _ = next(r for r in rows if r[0] == key)
        known_3h = [
            (k, d) for o, k, d in arrivals if o == origin and t - dt.timedelta(hours=3) <= k <= t
        ]
        known_1h = [
            k for o, k, _ in arrivals if o == origin and t - dt.timedelta(hours=1) <= k <= t
        ]
        mean_3h, count_1h, _, max_known = got[key]
        want = sum(d for _, d in known_3h) / len(known_3h) if known_3h else None
        assert (mean_3h is None) == (want is None) and (
            want is None or mean_3h == pytest.approx(want)
        ), key
        assert count_1h == len(known_1h), key
        assert max_known == (max(k for k, _ in known_3h) if known_3h else None), key
        assert max_known is None or max_known <= t, key
        early_departures_seen += any(d < 0 for _, d in known_3h)
    # Not vacuous: flights that left early count from their actual departure.
    assert early_departures_seen > 10


def test_same_day_windows_pass_the_leakage_check(flights_home, instance) -> None:
    from ml_assets_tests.layers.features.conftest import checks_by_name, materialize_features

    spec = write_variant(
        flights_home,
        {
            "origin_dep_delay_1h": {
                "kind": "numeric",
                "window": {
                    "agg": "mean",
                    "of": "dep_delay",
                    "by": ["origin"],
                    "hours": 1,
                    "known_at": DEPARTED,
                },
            }
        },
    )
    result = materialize_features(spec, instance, "2013-01-07", "2013-01-08")
    leakage = checks_by_name(result)["leakage"]
    assert leakage.passed, leakage.metadata
    meta = {k: v.value for k, v in leakage.metadata.items()}
    assert meta["leaky_rows"] == 0 and meta["rows"] > 1500
