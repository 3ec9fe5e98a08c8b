"""The retrain sensor on a replay: quiet on stable days, fires once on a real shift, traceable.

Real flights features (Jan-May 2013), a champion trained up to Feb 28, real monitor runs, the
real sensor evaluated against the Dagster instance, and the retrain it requests executed.
"""

import datetime as dt

import dagster as dg
import duckdb
import pytest

from ml_assets import settings
from ml_assets.core.predictor import current_champion
from ml_assets.core.tags import (
    RANGE_END,
    RANGE_START,
    TRIGGER_CHECK_TAG,
    TRIGGER_PARTITION_TAG,
    TRIGGER_TAG,
)
from ml_assets.definitions import build_defs
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.lifecycle.conftest import audit_rows, train

# Slow tier (months of monitoring and a retrain): `make test` runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow

MODEL = "flights_arrival_delay"


def monitor(defs: dg.Definitions, instance: dg.DagsterInstance, start: str, end: str):
    return defs.resolve_job_def(monitor_job_name_for(defs)).execute_in_process(
        instance=instance, tags={RANGE_START: start, RANGE_END: end}, raise_on_error=False
    )


def monitor_job_name_for(defs: dg.Definitions) -> str:
    return next(
        j.name for j in defs.get_repository_def().get_all_jobs() if j.name.endswith("__monitor")
    )


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def("flights__retrain")
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    )


def test_retrain_fires_once_on_real_drift_and_not_on_stable_days(
    flights_home, flights_variant, instance
) -> None:
    # Severe = (nearly) every feature drifted: an ordinary day drifts in weather, month and rates.
    spec = flights_variant(monitoring={"retrain_cooldown_days": 7, "drift_share_severe": 0.95})
    defs = build_defs([spec])
    assert spec.names.job("monitor") == monitor_job_name_for(defs)
    assert train(spec, instance, dt.date(2013, 2, 28), trigger="initial").success

    # Stable: days like the ones the champion learned from. No severe drift, no degradation.
    stable = monitor(defs, instance, "2013-02-16", "2013-02-28")
    assert stable.success
    evaluations = {e.check_name: e for e in stable.get_asset_check_evaluations()}
    assert evaluations["severe_drift"].passed, evaluations["severe_drift"].metadata["summary"]
    assert evaluations["degradation"].passed, evaluations["degradation"].metadata["summary"]
    first = tick(defs, instance, None)
    assert list(first.run_requests) == []

    # A real shift: the world of May 13-19 changes in every feature (new carriers and airports,
    # longer routes, heavier delays, hotter days, other hours).
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        conn.execute(
            """UPDATE flights.features SET distance = distance * 3 + 500, temp = temp + 45,
                   humid = least(humid + 40, 100), wind_speed = wind_speed + 25, visib = visib / 4,
                   carrier_delay_rate_7d = least(carrier_delay_rate_7d + 0.5, 1),
                   carrier_delay_rate_28d = least(carrier_delay_rate_28d + 0.5, 1),
                   origin_delay_rate_7d = least(origin_delay_rate_7d + 0.5, 1),
                   origin_delay_rate_28d = least(origin_delay_rate_28d + 0.5, 1),
                   dest_delay_rate_7d = least(dest_delay_rate_7d + 0.5, 1),
                   dest_delay_rate_28d = least(dest_delay_rate_28d + 0.5, 1),
                   route_delay_rate_7d = least(route_delay_rate_7d + 0.5, 1),
                   route_delay_rate_28d = least(route_delay_rate_28d + 0.5, 1),
                   origin_dep_delay_1h = origin_dep_delay_1h + 120,
                   origin_dep_delay_3h = origin_dep_delay_3h + 120,
                   origin_dep_delay_24h = origin_dep_delay_24h + 120,
                   origin_departed_1h = origin_departed_1h / 4,
                   origin_departed_3h = origin_departed_3h / 4,
                   carrier_dep_delay_3h = carrier_dep_delay_3h + 120,
                   carrier_origin_dep_delay_3h = carrier_origin_dep_delay_3h + 120,
                   carrier_origin_departed_3h = carrier_origin_departed_3h / 4,
                   plane_age = plane_age + 30, precip = precip + 2,
                   sched_dep_hour = (sched_dep_hour + 12) % 24, carrier = 'ZZ', origin = 'XXX',
                   dest = 'YYY', weekday = 'Funday', month = month + 6
               WHERE _partition_date BETWEEN DATE '2013-05-13' AND DATE '2013-05-19'"""
        )
    shifted = monitor(defs, instance, "2013-05-13", "2013-05-19")
    verdicts = {e.check_name: e for e in shifted.get_asset_check_evaluations()}
    assert not verdicts["severe_drift"].passed
    # The shifted week's scores are noise: the champion's trailing AUC falls beyond its bound.
    assert not verdicts["degradation"].passed, verdicts["degradation"].metadata["summary"]

    second = tick(defs, instance, first.cursor)
    # Both the severe drift and the degradation it caused fail in the same week: the cooldown
    # turns them into one retrain.
    (request,) = second.run_requests
    assert request.tags[TRIGGER_CHECK_TAG] in {
        "drift_report:severe_drift",
        "performance:degradation",
    }
    assert request.tags[TRIGGER_PARTITION_TAG].startswith("2013-05-1")
    # Only once per trigger: the next tick, with the advanced cursor, asks for nothing new.
    assert list(tick(defs, instance, second.cursor).run_requests) == []

    retrain = (
        build_defs([spec])
        .resolve_job_def(spec.names.job("train"))
        .execute_in_process(
            instance=instance,
            run_config=request.run_config,
            tags=request.tags,
            raise_on_error=False,
        )
    )
    # Turned on fresh (no cursor), as in `make dev` after `make run`: the failures were answered
    # by that retrain, so nothing but the staleness rule may ask, and for one run at most.
    fresh = list(tick(defs, instance, None).run_requests)
    assert len(fresh) <= 1, [r.tags for r in fresh]
    assert all(r.tags[TRIGGER_CHECK_TAG] == "champion_model:stale" for r in fresh)
    # Promoted or rejected, the retrain is recorded and traceable to the failed check.
    decision = audit_rows()[-1]
    assert decision[4] == request.tags[TRIGGER_TAG] and decision[5] == retrain.run_id
    version = decision[1]
    tracking = MlflowTracking()
    mv = tracking.client().get_model_version(MODEL, version)
    run = tracking.client().get_run(mv.tags["mlflow_parent_run_id"])
    assert run.data.tags["trigger"] == request.tags[TRIGGER_TAG]
    assert run.data.tags["dagster_run_id"] == retrain.run_id
    # The model learned from the days known on the trigger day (label delay 1 day).
    as_of = dt.date.fromisoformat(request.tags[TRIGGER_PARTITION_TAG]) - dt.timedelta(days=1)
    assert mv.tags["train_window"].endswith(as_of.isoformat())
    assert current_champion(tracking, MODEL) in {"1", version}
