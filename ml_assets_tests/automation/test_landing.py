"""The landing sensor: good drops become one run over their days; bad drops are moved aside."""

import datetime as dt

import dagster as dg
import duckdb

from ml_assets import settings
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets_tests.conftest import ORDERS_HEADER, orders_rows, write_csv


def tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    sensor = defs.resolve_sensor_def("orders__landing")
    return list(
        sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, definitions=defs)
        ).run_requests
    )


def test_a_dropped_file_is_ingested_into_its_partitions_once(home, orders_spec, instance) -> None:
    defs = build_defs([orders_spec])
    job = defs.resolve_job_def("orders__daily_layers")
    assert job.execute_in_process(
        instance=instance, tags={RANGE_START: "2024-01-01", RANGE_END: "2024-01-03"}
    ).success

    landing = settings.landing_dir("orders")
    rows = orders_rows(dt.date(2024, 1, 2), 2, start_id=200) + orders_rows(
        dt.date(2024, 1, 3), 3, start_id=300
    )
    write_csv(landing / "drop1.csv", rows)
    write_csv(landing / "drop1-again.csv", rows)  # same bytes, other name
    write_csv(
        landing / "broken.csv",
        ["1;2024-01-02T10:00:00Z;c1;5;paid;2"],
        header=ORDERS_HEADER.replace(",", ";"),
    )

    requests = tick(defs, instance)
    # The two copies map to the same run key: Dagster launches one run for them.
    assert len({r.run_key for r in requests}) == 1
    request = requests[0]
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2024-01-02", "2024-01-03")
    # The broken drop was moved aside with its reason.
    rejected = landing / "_rejected"
    assert not (landing / "broken.csv").exists()
    assert "delimiter" in (rejected / "broken.csv.reason.txt").read_text()

    for r in requests:  # even launching both copies ingests the bytes once
        result = job.execute_in_process(instance=instance, run_config=r.run_config, tags=r.tags)
        assert result.success
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        per_day = conn.execute(
            "SELECT _partition_date, count(*) FROM orders.validated GROUP BY 1 ORDER BY 1"
        ).fetchall()
        kinds = conn.execute("SELECT kind, rows FROM orders.source_files ORDER BY kind").fetchall()
    assert per_day == [(dt.date(2024, 1, 1), 5), (dt.date(2024, 1, 2), 7), (dt.date(2024, 1, 3), 8)]
    assert kinds == [("bundled", 15), ("landing", 5)]
