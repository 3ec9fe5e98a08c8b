"""Row-count, NULL-rate and range checks on `features`, each made to fail by a realistic defect."""

import dagster as dg

from ml_assets_tests.layers.features.conftest import checks_by_name, materialize_features, query

DAY = "2013-01-08"


def test_row_count_blocks_when_the_sql_drops_rows(flights_home, spec_copy, instance) -> None:
    # A classic bug: an inner join to a lookup silently drops flights whose plane is unknown.
    spec = spec_copy(edit={"LEFT JOIN {ref_planes}": "JOIN {ref_planes}"})
    result = materialize_features(spec, instance, DAY)
    assert not result.success
    check = checks_by_name(result)["row_count_matches_validated"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    (day,) = check.metadata["mismatched_days"].value
    # Independently: the day's flights with no row in the planes table.
    ((validated, unknown_planes),) = query(
        "SELECT count(*), count(*) FILTER (WHERE p.tailnum IS NULL) FROM flights.validated v "
        "LEFT JOIN flights.ref_planes p USING (tailnum) WHERE v._partition_date = $d",
        {"d": DAY},
    )
    assert unknown_planes > 0
    assert day["day"] == DAY and day["validated"] == validated
    assert day["missing"] == unknown_planes == validated - day["features"]
    sample = day["missing_sample"]
    assert sample and query(
        "SELECT count(*) FROM flights.validated v JOIN flights.ref_planes p USING (tailnum) "
        "WHERE v._key IN (SELECT unnest($keys))",
        {"keys": sample},
    ) == [(0,)]


def test_null_rates_and_ranges_warn_without_blocking(flights_home, spec_copy, instance) -> None:
    # A bad reference row: JFK's 09:00 observation on the day reads 500 °F.
    query(
        "UPDATE flights.ref_weather SET temp = 500 "
        "WHERE origin = 'JFK' AND month = 1 AND day = 8 AND hour = 9"
    )
    # And a NULL budget for plane_age that the bundled data (tails missing from planes) exceeds.
    spec = spec_copy(columns={"plane_age": {"max_null_rate": 0.01}})
    result = materialize_features(spec, instance, DAY)
    assert result.success  # WARN checks do not block
    checks = checks_by_name(result)

    ranges = checks["ranges"]
    assert not ranges.passed and ranges.severity == dg.AssetCheckSeverity.WARN
    assert ranges.metadata["columns_out_of_range"].value == ["temp"]
    # Exactly the JFK departures that the 09:00 observation is the latest one for.
    ((expected,),) = query(
        "SELECT count(*) FROM flights.validated WHERE origin = 'JFK' AND _partition_date = $d "
        "AND hour(_event_time) = 9",
        {"d": DAY},
    )
    temp = ranges.metadata["ranges"].value["temp"]
    assert temp["outside"] == expected > 0 and temp["observed_max"] == 500

    nulls = checks["null_rates"]
    assert not nulls.passed and nulls.severity == dg.AssetCheckSeverity.WARN
    assert nulls.metadata["columns_over_limit"].value == ["plane_age"]
    # The observed share is that of flights without a known plane year, counted independently.
    ((share,),) = query(
        "SELECT avg(CASE WHEN p.year IS NULL THEN 1 ELSE 0 END) FROM flights.validated v "
        "LEFT JOIN flights.ref_planes p USING (tailnum) WHERE v._partition_date = $d",
        {"d": DAY},
    )
    observed = nulls.metadata["null_rates"].value["plane_age"]
    assert observed["rate"] == round(share, 4) and observed["max"] == 0.01
    # The other checks are unaffected.
    assert checks["leakage"].passed and checks["row_count_matches_validated"].passed
