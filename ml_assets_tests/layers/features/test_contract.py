"""The feature SQL contract and the reference tables, on small DuckDB databases (no Dagster)."""

import datetime as dt

import duckdb
import pytest

from ml_assets.core.spec import FeatureColumn, SpecError
from ml_assets.layers.features.logic import ensure_table, write_features
from ml_assets.layers.features.query import (
    FeatureSqlError,
    composed_query,
    load_feature_files,
    parameters,
)
from ml_assets.layers.features.reference import load_reference_tables
from ml_assets.layers.ingest.files import SourceError, resolve_source, sha256

DAY = dt.date(2013, 11, 3)


def test_unknown_slots_and_missing_files_fail_when_definitions_load(spec_copy) -> None:
    spec = spec_copy(edit={"{ref_planes}": "{ref_aircraft}"})
    with pytest.raises(SpecError, match=r"unknown slot\(s\) \['ref_aircraft'\]"):
        load_feature_files(spec)
    spec.path.parent.joinpath("features.sql").unlink()
    with pytest.raises(SpecError, match=r"features\.sql.*file not found"):
        load_feature_files(spec)


def test_reference_tables_load_whole_with_checksums_and_fail_atomically(
    home, flights_spec, spec_copy
) -> None:
    conn = duckdb.connect()
    tables = {t.name: t for t in load_reference_tables(conn, flights_spec)}
    assert set(tables) == {"weather", "planes", "airports"}
    for name, source in flights_spec.lookups.items():
        (file,) = resolve_source(source)
        lines = sum(1 for _ in file.path.open()) - 1  # minus the header
        assert (
            tables[name].rows
            == lines
            == conn.execute(f"SELECT count(*) FROM flights.ref_{name}").fetchone()[0]
        )
        assert tables[name].checksum == sha256(file.path)
    # 'NA' is NULL and types are detected from the whole file.
    assert conn.execute(
        "SELECT typeof(temp), count(*) - count(wind_gust) > 0 FROM flights.ref_weather GROUP BY ALL"
    ).fetchall() == [("DOUBLE", True)]

    # One bad lookup: nothing is replaced (the planes table keeps its rows).
    conn.execute("DELETE FROM flights.ref_planes WHERE year < 2000")
    kept = conn.execute("SELECT count(*) FROM flights.ref_planes").fetchone()[0]
    broken = spec_copy()
    broken = broken.model_copy(
        update={
            "lookups": {
                **broken.lookups,
                "zzz": broken.lookups["planes"].model_copy(update={"files": ["data/nope.csv"]}),
            }
        }
    )
    with pytest.raises(SourceError, match=r"nope\.csv"):
        load_reference_tables(conn, broken)
    assert conn.execute("SELECT count(*) FROM flights.ref_planes").fetchone()[0] == kept


def tiny_warehouse(flights_spec) -> duckdb.DuckDBPyConnection:
    """Two flights and a DST fall-back weather record, in the tables the features read.

    Flight a leaves 90 minutes late, at 03:00, after b's scheduled departure: b does not see
    its delay yet. b is cancelled (no delay): nobody ever sees it."""
    conn = duckdb.connect()
    load_reference_tables(conn, flights_spec)
    conn.execute(
        """CREATE TABLE flights.validated AS SELECT * FROM (VALUES
            ('a', TIMESTAMP '2013-11-03 01:30', DATE '2013-11-03', 1.0, 'UA', 'EWR', 'ORD', 11, 719.0, 'N12221', 90.0),
            ('b', TIMESTAMP '2013-11-03 02:10', DATE '2013-11-03', NULL, 'UA', 'EWR', 'ORD', 11, 719.0, NULL, NULL)
        ) t(_key, _event_time, _partition_date, _label, carrier, origin, dest, month, distance, tailnum,
            dep_delay)"""
    )
    return conn


def test_the_repeated_fall_back_hour_uses_the_earlier_observation(home, flights_spec) -> None:
    conn = tiny_warehouse(flights_spec)
    # The bundled record has 01:00 twice on 2013-11-03 (EDT, then EST), with different values.
    doubled = conn.execute(
        "SELECT time_hour, temp FROM flights.ref_weather WHERE origin = 'EWR' AND month = 11 "
        "AND day = 3 AND hour = 1 ORDER BY time_hour"
    ).fetchall()
    assert len(doubled) == 2
    files = load_feature_files(flights_spec)
    sql = composed_query(conn, flights_spec, files, "flights.validated", DAY, DAY)
    rows = dict(
        conn.execute(
            f"SELECT _key, temp FROM ({sql})", parameters(sql, flights_spec, DAY, DAY)
        ).fetchall()
    )
    assert rows["a"] == doubled[0][1]


def test_outputs_must_match_the_declared_features(home, flights_spec, spec_copy) -> None:
    conn = tiny_warehouse(flights_spec)
    undeclared = spec_copy(edit={"r.month,": "r.month, r.month AS month_again,"})
    with pytest.raises(
        FeatureSqlError, match=r"features.sql: returns column\(s\) \['month_again'\]"
    ):
        write_features(
            conn,
            undeclared,
            load_feature_files(undeclared),
            DAY,
            DAY,
            run_id="r",
            featurized_at=dt.datetime.now(dt.UTC),
        )
    missing = spec_copy(edit={"    r.distance,\n": ""})
    with pytest.raises(FeatureSqlError, match=r"feature\(s\) \['distance'\] declared"):
        write_features(
            conn,
            missing,
            load_feature_files(missing),
            DAY,
            DAY,
            run_id="r",
            featurized_at=dt.datetime.now(dt.UTC),
        )
    # A valid write, then a spec whose features changed: refused, with the way out in the message.
    files = load_feature_files(flights_spec)
    write_features(
        conn, flights_spec, files, DAY, DAY, run_id="r", featurized_at=dt.datetime.now(dt.UTC)
    )
    assert conn.execute(
        "SELECT _key, _label, _label_known_at FROM flights.features ORDER BY 1"
    ).fetchall() == [
        ("a", 1.0, dt.datetime(2013, 11, 4, 1, 30)),
        ("b", None, dt.datetime(2013, 11, 4, 2, 10)),
    ]
    fewer = spec_copy()
    fewer = fewer.model_copy(
        update={
            "features": fewer.features.model_copy(
                update={"columns": {"month": FeatureColumn(kind="numeric")}}
            )
        }
    )
    with pytest.raises(FeatureSqlError, match=r"DROP TABLE flights\.features"):
        ensure_table(conn, fewer)


def test_only_parameters_used_in_code_are_bound(flights_spec) -> None:
    sql = "SELECT $start AS s, '$end' AS text -- about $lookback_days\n/* $history_start */"
    assert parameters(sql, flights_spec, DAY, DAY) == {"start": DAY}
    with pytest.raises(FeatureSqlError, match=r"unknown parameter\(s\) \['today'\]"):
        parameters("SELECT $today", flights_spec, DAY, DAY)


def test_several_sql_files_are_joined_on_the_key(home, flights_spec, spec_copy) -> None:
    conn = tiny_warehouse(flights_spec)
    spec = spec_copy(edit={"    r.distance,\n": ""})
    extra = spec.path.parent / "extra.sql"
    # A second file may return every history row: only the window's rows are kept.
    extra.write_text(
        "SELECT _key, distance / 1000 AS distance, _event_time AS _max_lookup_time FROM {validated}"
    )
    spec = spec.model_copy(
        update={"features": spec.features.model_copy(update={"sql": ["features.sql", "extra.sql"]})}
    )
    write_features(
        conn,
        spec,
        load_feature_files(spec),
        DAY,
        DAY,
        run_id="r",
        featurized_at=dt.datetime.now(dt.UTC),
    )
    rows = conn.execute(
        "SELECT _key, distance, month, _max_lookup_time FROM flights.features ORDER BY 1"
    ).fetchall()
    # month from features.sql, distance from extra.sql; the audit column is the later of the two.
    assert rows == [
        ("a", 0.719, 11.0, dt.datetime(2013, 11, 3, 1, 30)),
        ("b", 0.719, 11.0, dt.datetime(2013, 11, 3, 2, 10)),
    ]
    extra.write_text("SELECT _key, month, distance FROM {validated}")
    with pytest.raises(FeatureSqlError, match=r"extra\.sql: feature 'month' is also returned by"):
        write_features(
            conn,
            spec,
            load_feature_files(spec),
            DAY,
            DAY,
            run_id="r",
            featurized_at=dt.datetime.now(dt.UTC),
        )


def test_a_failing_write_leaves_the_previous_rows(home, flights_spec, spec_copy) -> None:
    conn = tiny_warehouse(flights_spec)
    now = dt.datetime.now(dt.UTC)
    write_features(
        conn,
        flights_spec,
        load_feature_files(flights_spec),
        DAY,
        DAY,
        run_id="good",
        featurized_at=now,
    )
    before = conn.execute("SELECT * FROM flights.features ORDER BY _key").fetchall()
    # A numeric feature that is not a number fails inside the transaction, after the DELETE.
    bad = spec_copy(edit={"    r.month,\n": "    'm' || r.month AS month,\n"})
    with pytest.raises(FeatureSqlError, match=r"failed for 2013-11-03\.\.2013-11-03: Conversion"):
        write_features(
            conn, bad, load_feature_files(bad), DAY, DAY, run_id="bad", featurized_at=now
        )
    assert conn.execute("SELECT * FROM flights.features ORDER BY _key").fetchall() == before
    assert {r[0] for r in conn.execute("SELECT _run_id FROM flights.features").fetchall()} == {
        "good"
    }
