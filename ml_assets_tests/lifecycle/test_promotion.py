"""Gated promotion through real Dagster runs: promote, reject, roll back; every case audited."""

import datetime as dt

import dagster as dg
import pytest

from ml_assets.core.predictor import current_champion
from ml_assets.definitions import build_defs
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.lifecycle.conftest import audit_rows, gate_results, train

# Slow tier (three trainings and a rollback): `make test` runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow

MODEL = "flights_arrival_delay"


def test_promote_reject_and_roll_back(flights_home, flights_variant, instance) -> None:
    tracking = MlflowTracking()
    base = flights_variant()

    # 1. The first candidate that clears the floor becomes champion.
    first = train(base, instance, dt.date(2013, 2, 28), trigger="initial")
    assert first.success, gate_results(first)
    blocking = {"metric_floor", "non_inferiority", "slice_gap", "leakage_guard"}
    assert all(passed for name, passed in gate_results(first).items() if name in blocking)
    assert current_champion(tracking, MODEL) == "1"
    card = first.asset_materializations_for_node("flights__model_card")[0]
    assert "## Intended use" in card.metadata["card"].value

    # 2. A worse candidate (trained on two days) is rejected: a decision, not a failure. The run
    # succeeds, the gate check fails (ERROR), the champion emits nothing, the alias stays.
    worse_spec = flights_variant("worse", training={"window_days": 30, "models": ["linear"]})
    worse = train(worse_spec, instance, dt.date(2013, 4, 15), trigger="worse")
    assert worse.success
    gates = gate_results(worse)
    assert gates["non_inferiority"] is False, gates
    (failed,) = [
        e for e in worse.get_asset_check_evaluations() if e.check_name == "non_inferiority"
    ]
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert worse.asset_materializations_for_node("flights__champion_model") == []
    assert worse.asset_materializations_for_node("flights__model_card") == []
    assert current_champion(tracking, MODEL) == "1"
    rejected = tracking.client().get_model_version(MODEL, "2")
    assert (
        rejected.tags["rejected"] == "true"
        and "non_inferiority" in rejected.tags["rejection_reason"]
    )

    # 3. A good candidate on newer data is promoted (lenient non-inferiority for this step).
    newer = flights_variant("newer", evaluation={"non_inferiority_tolerance": 0.5})
    promoted = train(newer, instance, dt.date(2013, 5, 30), trigger="newer")
    assert promoted.success, gate_results(promoted)
    assert current_champion(tracking, MODEL) == "3"

    # 4. Rollback restores the champion it replaced.
    rollback = build_defs([base]).resolve_job_def(base.names.job("rollback"))
    result = rollback.execute_in_process(
        instance=instance,
        run_config={
            "ops": {
                "flights__champion_model": {
                    "config": {"rollback_to": "previous", "reason": "test rollback"}
                }
            }
        },
    )
    assert result.success
    assert current_champion(tracking, MODEL) == "1"

    rows = audit_rows()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("promoted", "1", None, "1", "initial"),
        ("rejected", "2", "1", "1", "worse"),
        ("promoted", "3", "1", "3", "newer"),
        ("rollback", "1", "3", "1", "manual"),
    ]
    assert [r[5] for r in rows] == [first.run_id, worse.run_id, promoted.run_id, result.run_id]


def test_leakage_guard_blocks_an_implausibly_perfect_candidate(
    flights_home, flights_variant, instance
) -> None:
    tracking = MlflowTracking()
    # A ceiling no honest flights model reaches: anything above it is treated as leakage.
    leaky = flights_variant("leaky", evaluation={"leakage_ceiling": 0.6})
    result = train(leaky, instance, dt.date(2013, 2, 28), trigger="leaky")
    assert result.success  # a rejection is a decision
    assert result.asset_materializations_for_node("flights__champion_model") == []
    assert gate_results(result)["leakage_guard"] is False
    assert current_champion(tracking, MODEL) is None
    assert [r[0] for r in audit_rows()] == ["rejected"]
