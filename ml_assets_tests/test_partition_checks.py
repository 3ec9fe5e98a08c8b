"""Per-day check status inside one range run, as the UI reads it (Dagster's GraphQL).

Four days of flights through raw -> validated/quarantine -> features in ONE run over a partition
range, on a real sqlite Dagster instance, with one day deliberately damaged at the source. The
UI's per-partition status of each check (`AssetCheck.partitionStatuses`, the query behind the
check's partition bar) must show each day on its own: the bad day failed, the others passed.
The monitoring checks yield their days through the same helper; a small two-check multi-asset
shaped like `drift_report` covers that path and the retrain sensor's one-trigger rule.
"""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster_graphql.cli import execute_query

from ml_assets.automation.retrain import failed_checks
from ml_assets.core.checks import (
    DayResult,
    daily_check_spec,
    is_day_record,
    record_days,
    window_days,
)
from ml_assets.core.partitions import daily_partitions, window
from ml_assets.core.spec import DatasetSpec, load_spec, read_spec_mapping, write_spec
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets.layers.ingest.files import resolve_source
from ml_assets_tests.conftest import FLIGHTS_SPEC

DAYS = ["2013-02-18", "2013-02-19", "2013-02-20", "2013-02-21"]
BAD = "2013-02-20"

# The UI's query for a check's partition bar (AssetCheckPartitionHealthQuery), trimmed.
PARTITION_STATUS = """
query PartitionStatus($assetKey: AssetKeyInput!, $checkName: String!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      assetCheckOrError(checkName: $checkName) {
        ... on AssetCheck {
          name
          executionForLatestMaterialization { status partition }
          partitionStatuses {
            ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } }
          }
        }
      }
    }
  }
}"""

# The UI's query for one partition of a check (AssetCheckPartitionDetailQuery), trimmed.
PARTITION_DETAIL = """
query PartitionDetail($assetKey: AssetKeyInput!, $checkName: String!, $partition: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, partition: $partition,
                       limit: 10) {
    runId
    status
    partition
    evaluation {
      success
      metadataEntries {
        label
        ... on FloatMetadataEntry { floatValue }
        ... on JsonMetadataEntry { jsonString }
      }
    }
  }
}"""

DAILY_CHECKS = {
    "raw": ["row_count_anomaly"],
    "validated": ["schema", "key_unique", "row_conservation", "null_rates"],
    "quarantine": ["violation_rate"],
    "features": ["leakage", "row_count_matches_validated", "null_rates", "ranges"],
}
# What the damage on BAD breaks; every other daily check passes every day.
FAILING_ON_BAD = {
    ("validated", "null_rates"),
    ("quarantine", "violation_rate"),
    ("features", "null_rates"),
}


def write_damaged_source(home: Path) -> str:
    """The four days of the bundled flights as a CSV under the home, BAD damaged three ways:
    a third of its arrivals without a delay (validated `null_rates`), every tenth flight with an
    unknown carrier (quarantined, `violation_rate`), every tail number unknown to the planes
    lookup (`plane_age` NULL, features `null_rates`)."""
    (bundled,) = resolve_source(load_spec(FLIGHTS_SPEC).source)
    target = home / "data" / "source" / "flights.csv"
    target.parent.mkdir(parents=True)
    bad = "(month = '2' AND day = '20')"
    with duckdb.connect() as conn:
        conn.execute(
            f"""COPY (
                SELECT * REPLACE (
                    CASE WHEN {bad} AND flight::INT % 3 = 0 THEN NULL ELSE arr_delay END
                        AS arr_delay,
                    CASE WHEN {bad} AND flight::INT % 10 = 0 THEN 'ZZ' ELSE carrier END
                        AS carrier,
                    CASE WHEN {bad} THEN 'NBAD' || flight ELSE tailnum END AS tailnum)
                FROM read_csv($path, all_varchar = true, nullstr = ['NA', ''])
                WHERE month = '2' AND day::INT BETWEEN 18 AND 21
            ) TO '{target}' (HEADER)""",
            {"path": str(bundled.readable_path)},
        )
    return str(target.relative_to(home))


@pytest.fixture
def damaged_flights(home: Path, monkeypatch: pytest.MonkeyPatch) -> DatasetSpec:
    """The flights spec reading the damaged CSV, loaded by the real entry point (as `make dev`
    loads it) through `ML_ASSETS_SPECS`. The window has no earlier days, so the rolling delay
    rates are NULL on its first day by construction: their NULL limits are lifted here."""
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw["source"] = {
        "files": [write_damaged_source(home)],
        "format": "csv",
        "csv": raw["source"]["csv"],
    }
    raw["features"]["sql"] = [str(FLIGHTS_SPEC.parent / p) for p in raw["features"].get("sql", [])]
    for name, column in raw["features"]["columns"].items():
        if "_delay_rate_" in name:
            column["max_null_rate"] = 1.0
    path = write_spec(home / "specs" / "flights" / "defs.yaml", raw)
    monkeypatch.setenv("ML_ASSETS_SPECS", str(path.parent))
    return load_spec(path)


@pytest.fixture
def sqlite_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """A sqlite instance on disk, like `make dev`'s: the UI's workspace needs one."""
    (home / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster_home")) as instance:
        yield instance


def statuses_by_day(ranges: list[dict]) -> dict[str, str]:
    """Expand the UI's compressed ranges into one status per day."""
    out: dict[str, str] = {}
    for r in ranges:
        day = dt.date.fromisoformat(r["startKey"])
        while day <= dt.date.fromisoformat(r["endKey"]):
            assert day.isoformat() not in out, "a day in two ranges"
            out[day.isoformat()] = r["status"]
            day += dt.timedelta(days=1)
    return out


def query(context: WorkspaceProcessContext, text: str, **variables: object) -> dict:
    result = execute_query(context, text, variables)
    assert "errors" not in result, result["errors"]
    return result["data"]


def test_a_range_run_shows_each_days_check_status_in_the_ui(
    damaged_flights: DatasetSpec, sqlite_instance: dg.DagsterInstance
) -> None:
    spec = damaged_flights
    job = build_defs([spec]).resolve_job_def(spec.names.job("daily_layers"))
    result = job.execute_in_process(
        instance=sqlite_instance,
        tags={RANGE_START: DAYS[0], RANGE_END: DAYS[-1]},
        raise_on_error=False,
    )
    assert result.success  # the damage trips WARN checks and a non-blocking one: nothing blocks
    assert {m.partition for m in result.get_asset_materialization_events() if m.partition} == set(
        DAYS
    )
    # The window's results are unchanged: one per check, without a partition, last of its step.
    window_results = [e for e in result.get_asset_check_evaluations() if not is_day_record(e)]
    assert sorted((e.asset_key.path[-1], e.check_name) for e in window_results) == sorted(
        [(a, c) for a, cs in DAILY_CHECKS.items() for c in cs]
        + [("raw", "freshness"), ("raw", "source_rows_accounted")]
    )
    assert {e.partition for e in window_results} == {None}
    by_check = {(e.asset_key.path[-1], e.check_name): e for e in window_results}
    assert not by_check[("validated", "null_rates")].passed
    assert by_check[("validated", "null_rates")].metadata["failed_partitions"].value == [BAD]

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="ml_assets.definitions", attribute="defs"),
        location_name="ml_assets",
    )
    with WorkspaceProcessContext(
        sqlite_instance, InProcessTestWorkspaceLoadTarget(origin)
    ) as context:
        for asset, checks in DAILY_CHECKS.items():
            for name in checks:
                key = {"path": ["flights", asset]}
                data = query(context, PARTITION_STATUS, assetKey=key, checkName=name)
                check = data["assetNodeOrError"]["assetCheckOrError"]
                days = statuses_by_day(check["partitionStatuses"]["ranges"])
                expected = {
                    d: "FAILED" if d == BAD and (asset, name) in FAILING_ON_BAD else "SUCCEEDED"
                    for d in DAYS
                }
                assert days == expected, (asset, name)
                # The asset's check list shows the window's result: this run, no partition.
                latest = check["executionForLatestMaterialization"]
                assert latest["partition"] is None
                assert latest["status"] == ("FAILED" if expected[BAD] == "FAILED" else "SUCCEEDED")

        # One day's detail: its own verdict and numbers, linked to the range run.
        quarantine = {"path": ["flights", "quarantine"]}
        (bad,) = query(
            context,
            PARTITION_DETAIL,
            assetKey=quarantine,
            checkName="violation_rate",
            partition=BAD,
        )["assetCheckExecutions"]
        assert bad["runId"] == result.run_id and bad["status"] == "FAILED"
        values = {m["label"]: m.get("floatValue") for m in bad["evaluation"]["metadataEntries"]}
        assert values["observed"] > values["threshold"] == 0.02
        (good,) = query(
            context,
            PARTITION_DETAIL,
            assetKey=quarantine,
            checkName="violation_rate",
            partition=DAYS[0],
        )["assetCheckExecutions"]
        assert good["status"] == "SUCCEEDED"
        values = {m["label"]: m.get("floatValue") for m in good["evaluation"]["metadataEntries"]}
        assert values["observed"] < values["threshold"]


# A monitoring-shaped multi-asset: two checks computed inside the asset from per-day values,
# keyed like flights' drift report so the retrain sensor reads it.
MONITOR_SPEC = load_spec(FLIGHTS_SPEC)
DRIFT = MONITOR_SPEC.names.key("drift_report")
SHARE = {"2013-03-01": 0.1, "2013-03-02": 0.7, "2013-03-03": 0.2, "2013-03-04": 0.9}


@dg.multi_asset(
    specs=[dg.AssetSpec(DRIFT, partitions_def=daily_partitions(MONITOR_SPEC))],
    check_specs=[
        daily_check_spec(MONITOR_SPEC, "drift_share", asset=DRIFT),
        # Blocking here (not in the real asset), to show the window's result still blocks.
        daily_check_spec(MONITOR_SPEC, "severe_drift", asset=DRIFT, blocking=True),
    ],
    partitions_def=daily_partitions(MONITOR_SPEC),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def drift_like(
    context: dg.AssetExecutionContext,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    start, end = window(context)
    yield dg.MaterializeResult(asset_key=DRIFT)
    shares = {d: SHARE[d.isoformat()] for d in window_days(start, end)}
    worst = max(shares, key=shares.__getitem__)
    for name, limit, severity in (
        ("drift_share", 0.5, dg.AssetCheckSeverity.WARN),
        ("severe_drift", 0.8, dg.AssetCheckSeverity.ERROR),
    ):
        days = [DayResult(d, s < limit, observed=s, threshold=limit) for d, s in shares.items()]
        meta = {
            "worst_day": dg.MetadataValue.text(worst.isoformat()),
            "partition_end": dg.MetadataValue.text(end.isoformat()),
            "observed": dg.MetadataValue.float(shares[worst]),
            "threshold": dg.MetadataValue.float(limit),
        }
        yield dg.AssetCheckResult(
            check_name=name,
            passed=all(s < limit for s in shares.values()),
            severity=severity,
            metadata=record_days(context, days, meta, severity=severity, check_name=name),
        )


def day_records(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    """The per-day check records a run logged, from its event log."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return [e for e in evaluations if is_day_record(e)]


def check_state(instance: dg.DagsterInstance, name: str) -> dict[str, str]:
    """Per day, the status the UI's `partitionStatuses` is built from (`AssetCheckState`)."""
    key = dg.AssetCheckKey(DRIFT, name)
    state = instance.event_log_storage.get_asset_check_state(
        [(key, daily_partitions(MONITOR_SPEC))]
    )[key]
    return {
        day: status.value
        for status, subset in state.subsets.items()
        for day in subset.value.get_partition_keys()
    }


def test_monitoring_checks_record_each_day_and_trigger_one_retrain(
    instance: dg.DagsterInstance,
) -> None:
    result = dg.materialize(
        [drift_like],
        instance=instance,
        tags={RANGE_START: "2013-03-01", RANGE_END: "2013-03-04"},
        raise_on_error=False,
    )
    # The blocking ERROR check failed (on 03-04): the step fails, as without per-day records.
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert "severe_drift" in str(failure.step_failure_data.error)
    assert check_state(instance, "drift_share") == {
        "2013-03-01": "SUCCEEDED",
        "2013-03-02": "FAILED",
        "2013-03-03": "SUCCEEDED",
        "2013-03-04": "FAILED",
    }
    assert check_state(instance, "severe_drift") == {
        "2013-03-01": "SUCCEEDED",
        "2013-03-02": "SUCCEEDED",
        "2013-03-03": "SUCCEEDED",
        "2013-03-04": "FAILED",
    }
    # Day records go to the run's event log (what the UI and the sensors read), not to the
    # step's event stream: the in-process result holds only the window's results.
    assert not any(is_day_record(e) for e in result.get_asset_check_evaluations())
    days = day_records(instance, result.run_id)
    assert sorted(e.metadata["observed"].value for e in days if e.check_name == "drift_share") == (
        sorted(SHARE.values())
    )
    # Two failed severe_drift records (the day and the window): the sensor sees one trigger.
    (trigger,) = failed_checks(instance, MONITOR_SPEC, after_record_id=0)
    assert (trigger.check, trigger.day) == ("drift_report:severe_drift", dt.date(2013, 3, 4))

    # A one-day run: Dagster partitions the window's result itself, and no day record is added.
    one = dg.materialize([drift_like], instance=instance, partition_key="2013-03-02")
    evaluations = one.get_asset_check_evaluations()
    assert [(e.check_name, e.partition) for e in evaluations] == [
        ("drift_share", "2013-03-02"),
        ("severe_drift", "2013-03-02"),
    ]
    assert not any(is_day_record(e) for e in evaluations)
    assert check_state(instance, "drift_share")["2013-03-02"] == "FAILED"
