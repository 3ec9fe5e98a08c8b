"""Naive baselines and the blocking gate to beat them: skill scores against hand-computed
references, and a regression model worse than the training mean rejected through real Dagster
runs on real DuckDB and MLflow."""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from ml_assets.core.spec import EvaluationSection
from ml_assets.layers.evaluate.assets import build_evaluate_assets
from ml_assets.layers.evaluate.baseline import baseline_skill, fit_baselines
from ml_assets.layers.evaluate.compare import compare
from ml_assets.layers.evaluate.gates import gate_results, verdict
from ml_assets.layers.evaluate.metrics import evaluate_predictions
from ml_assets.layers.evaluate.slices import slice_metrics
from ml_assets.layers.promote.assets import build_promote_assets
from ml_assets.layers.train.assets import build_train_assets
from ml_assets_tests.layers.train.conftest import (
    load_features,
    make_store,
    synthetic_features,
    write_spec,
)

RNG = np.random.default_rng(5)
# A label with a weekly cycle: Mondays (1) high, weekends (6, 7) low.
WEEKDAY_EFFECT = {1: 4.0, 2: 1.0, 3: 0.0, 4: 0.5, 5: 1.5, 6: -2.0, 7: -3.0}


def weekly(n: int) -> tuple[np.ndarray, np.ndarray]:
    days = RNG.integers(1, 8, n)
    return days, 10 + np.vectorize(WEEKDAY_EFFECT.get)(days) + RNG.normal(0, 1, n)


def stats(days: np.ndarray, y: np.ndarray) -> list[tuple[int, int, float]]:
    return [(d, int((days == d).sum()), float(y[days == d].mean())) for d in np.unique(days)]


def regression_gates(t: np.ndarray, s: np.ndarray, days: np.ndarray, b) -> dict:
    m = evaluate_predictions(t, s, "regression")
    skill = baseline_skill(m, b, t, days)
    slices = slice_metrics(pd.DataFrame(index=range(t.size)), [], t, s, "regression", "rmse", 10)
    section = EvaluationSection(metric="rmse", floor=1e9)
    gates = gate_results(m, compare(m, None, "rmse", 0.0), slices, skill, section)
    return skill, {g.name: g for g in gates}


def test_regression_skill_against_the_mean_and_the_weekday_mean() -> None:
    train_days, train_y = weekly(5_000)
    days, t = weekly(2_000)
    b = fit_baselines("regression", stats(train_days, train_y))
    assert b.mean == pytest.approx(train_y.mean())
    # A model that learned the weekly cycle and half of what remains: beats both baselines.
    cycle = 10 + np.vectorize(WEEKDAY_EFFECT.get)(days)
    good = cycle + 0.5 * (t - cycle)
    skill, gates = regression_gates(t, good, days, b)
    rmse = skill.skill("rmse")
    mean_rmse = np.sqrt(np.mean((t - train_y.mean()) ** 2))
    weekday_pred = np.array([train_y[train_days == d].mean() for d in days])
    weekday_rmse = np.sqrt(np.mean((t - weekday_pred) ** 2))
    assert rmse.baselines == pytest.approx(
        {"training_mean": mean_rmse, "weekday_mean": weekday_rmse}
    )
    assert rmse.best == "weekday_mean" and weekday_rmse < mean_rmse
    assert rmse.skill == pytest.approx(1 - rmse.model / weekday_rmse) and rmse.skill > 0
    assert gates["baseline_skill"].passed and gates["baseline_skill"].blocking

    # Predicting the training mean beats the mean by nothing, and loses to the weekly cycle: the
    # gate judges against the *best* baseline.
    flat = np.full(t.size, train_y.mean())
    skill, gates = regression_gates(t, flat, days, b)
    assert skill.skill("rmse").skill < -0.5
    assert 1 - skill.skill("rmse").model / mean_rmse == pytest.approx(0.0, abs=1e-12)
    assert not gates["baseline_skill"].passed
    assert "no better than predicting weekday_mean" in gates["baseline_skill"].detail


def test_binary_skill_is_against_the_training_rate() -> None:
    n = 4_000
    z = RNG.normal(-1, 1, n)
    y = (RNG.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    p = 1 / (1 + np.exp(-z))
    b = fit_baselines("binary", [(1, 3_000, 0.3)])
    m = evaluate_predictions(y, p, "binary", 0.5)
    skill = baseline_skill(m, b, y, np.ones(n))
    base_ll = log_loss(y, np.full(n, 0.3))
    assert skill.skill("log_loss").skill == pytest.approx(1 - log_loss(y, p) / base_ll)
    base_brier = np.mean((y - 0.3) ** 2)
    assert skill.skill("brier").skill == pytest.approx(1 - np.mean((y - p) ** 2) / base_brier)
    assert skill.gated == "log_loss" and skill.gate_skill.skill > 0
    # Scores that carry no information beyond noise lose to the rate.
    noise = evaluate_predictions(y, RNG.uniform(0, 1, n), "binary", 0.5)
    assert baseline_skill(noise, b, y, np.ones(n)).gate_skill.skill < 0


def drifted_regression() -> pd.DataFrame:
    """Synthetic regression rows whose label turns around in the test days (2024-02-02 on):
    y = 6 - y there, so the model (right on train and validation) is worse than the mean."""
    frame = synthetic_features("regression", days=40, rows_per_day=150, seed=11)
    late = frame["_partition_date"] >= dt.date(2024, 2, 2)
    frame.loc[late, "_label"] = 6.0 - frame.loc[late, "_label"]
    return frame


def test_a_regression_model_worse_than_the_training_mean_is_rejected(home: Path) -> None:
    store = make_store(home / "store")
    # A floor any model meets (RMSE <= 100): only the baseline gate can stop this one.
    spec = write_spec(
        home, "drift", kind="regression", models="[linear]", evaluation="{floor: 100.0}"
    )
    load_features(store, "drift", "regression", 40, 150, frame=drifted_regression())
    assets = [*build_train_assets(spec), *build_evaluate_assets(spec), *build_promote_assets(spec)]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            assets,
            instance=instance,
            resources=store.resources(),
            run_config={"ops": {"drift__training_set": {"config": {"as_of": "2024-02-08"}}}},
        )
    assert result.success  # a rejection is a decision, not a failed run
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    gate = checks["baseline_skill"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.ERROR
    blocking = ["metric_floor", "non_inferiority", "slice_gap", "leakage_guard"]
    assert all(checks[name].passed for name in blocking)  # nothing else would have stopped it
    assert result.asset_materializations_for_node("drift__champion_model") == []

    # The observed skill, recomputed here from the holdout and the train split's labels.
    ref = result.output_for_node("drift__model_candidate")
    evaluation = result.output_for_node("drift__model_evaluation")
    rows = store.frame(
        "SELECT * FROM drift.training_set ORDER BY _partition_date, _event_time, _key"
    )
    train, test = rows[rows["_split"] == "train"], rows[rows["_split"] == "test"]
    t = test["_label"].to_numpy()
    model_rmse = evaluation.metrics["rmse"]
    mean_rmse = np.sqrt(np.mean((t - train["_label"].mean()) ** 2))
    weekday = train.groupby(train["_event_time"].dt.dayofweek)["_label"].mean()
    seasonal = test["_event_time"].dt.dayofweek.map(weekday).to_numpy()
    seasonal_rmse = np.sqrt(np.mean((t - seasonal) ** 2))
    expected = 1 - model_rmse / min(mean_rmse, seasonal_rmse)
    assert gate.metadata["observed"].value == pytest.approx(expected, abs=1e-9)
    assert expected < -0.3 and evaluation.metrics["r2"] < 0

    with duckdb.connect(store.warehouse.database, read_only=True) as conn:
        (row,) = conn.execute(
            "SELECT decision, candidate_version, reason, metrics FROM governance.model_decisions"
        ).fetchall()
    assert row[:2] == ("rejected", ref.version) and "baseline_skill" in row[2]
    assert '"rmse_skill"' in row[3] and '"mae_skill"' in row[3]
    assert verdict(evaluation.gates).failed_blocking == ("baseline_skill",)
    tags = store.tracking.client().get_model_version(ref.registered_name, ref.version).tags
    assert tags["rejected"] == "true" and "baseline_skill" in tags["rejection_reason"]
    run = store.tracking.client().get_run(ref.run_id)
    assert run.data.metrics["holdout_rmse_skill"] == pytest.approx(expected, abs=1e-9)
