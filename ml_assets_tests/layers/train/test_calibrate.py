"""Calibration on validation: kept only where it beats the raw scores out of fold, stored with the
version, applied by every loader, and judged by the calibration gate. Real DuckDB, real MLflow."""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from ml_assets.core.predictor import CALIBRATION, DECISION_THRESHOLD, load_predictor
from ml_assets.core.scores import Calibration, logit
from ml_assets.layers.evaluate.assets import build_evaluate_assets
from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.calibrate import calibrate, fit_method
from ml_assets.layers.train.threshold import choose_threshold
from ml_assets_tests.layers.train.conftest import (
    load_features,
    make_store,
    synthetic_features,
    write_spec,
)

DAYS = np.repeat(np.arange(14), 300)


def labelled(scores_of_truth: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(scores_of_truth.size) < scores_of_truth).astype(float)


def truth(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True log-odds of 14 days x 300 rows and labels drawn from them."""
    z = np.random.default_rng(seed).normal(-1.0, 1.2, DAYS.size)
    return z, labelled(1 / (1 + np.exp(-z)), seed + 100)


@pytest.mark.parametrize("seed", range(8))
def test_a_miscalibrated_model_is_calibrated_and_kept(seed: int) -> None:
    z, y = truth(seed)
    raw = 1 / (1 + np.exp(-(0.5 * z - 1.0)))  # under-confident, and too few positives
    fit = calibrate(y, raw, DAYS)
    assert fit.calibration is not None and fit.method in ("isotonic", "sigmoid")
    # Kept on its out-of-fold loss, which beats the raw scores' on the same rows.
    assert fit.log_loss == min(fit.cross_fitted.values()) < fit.raw_log_loss
    assert fit.raw_log_loss == pytest.approx(log_loss(y, raw))
    calibrated = fit.calibration.apply(raw)
    assert abs(calibrated.mean() - y.mean()) < 0.01 < abs(raw.mean() - y.mean())


@pytest.mark.parametrize("seed", range(8))
def test_a_calibrator_is_kept_only_when_it_beats_the_raw_scores_out_of_fold(seed: int) -> None:
    z, y = truth(seed)
    raw = 1 / (1 + np.exp(-z))  # the true probabilities: nothing to fix
    fit = calibrate(y, raw, DAYS)
    kept = fit.calibration is not None
    assert kept == (min(fit.cross_fitted.values()) < fit.raw_log_loss)
    # In-sample, isotonic always "improves" (it is the best monotone fit of these rows): that is
    # why the choice is made out of fold.
    in_sample = fit_method("isotonic", y, raw).apply(raw)
    assert log_loss(y, in_sample) < fit.raw_log_loss
    if kept:  # by chance a near-identity map: a negligible gain
        assert fit.raw_log_loss - fit.log_loss < 1e-3
    else:
        assert fit.log_loss == fit.raw_log_loss and "kept raw scores" in fit.note


def test_stored_parameters_predict_what_sklearn_fitted() -> None:
    z, y = truth(1)
    raw = 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    new = np.random.default_rng(9).uniform(-0.1, 1.1, 500)  # beyond the fitted range too
    eps = 0.5 / len(y)
    iso = IsotonicRegression(y_min=eps, y_max=1 - eps, out_of_bounds="clip").fit(raw, y)
    stored = Calibration.from_dict(json.loads(json.dumps(fit_method("isotonic", y, raw).to_dict())))
    np.testing.assert_allclose(stored.apply(new), iso.predict(new), atol=1e-12)
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(logit(raw)[:, None], y)
    stored = Calibration.from_dict(json.loads(json.dumps(fit_method("sigmoid", y, raw).to_dict())))
    inside = np.clip(new, 0.01, 0.99)
    np.testing.assert_allclose(
        stored.apply(inside), platt.predict_proba(logit(inside)[:, None])[:, 1], atol=1e-12
    )


def test_no_calibration_when_the_spec_says_none() -> None:
    z, y = truth(0)
    raw = 1 / (1 + np.exp(-(0.5 * z - 1.0)))
    assert calibrate(y, raw, DAYS, "none").calibration is None
    assert calibrate(y, raw, DAYS, "sigmoid").method == "sigmoid"


def shifted_features() -> pd.DataFrame:
    """Synthetic binary rows whose validation and test days have more positives than train (a
    third of the negatives flipped), so the raw scores carry the train split's base rate."""
    frame = synthetic_features("binary", days=40, rows_per_day=250, seed=11)
    validation_start = dt.date(2024, 1, 26)  # window 01-10..02-08: train to 01-25
    rng = np.random.default_rng(3)
    later = (frame["_partition_date"] >= validation_start) & (frame["_label"] == 0)
    flip = later & (rng.random(len(frame)) < 1 / 3)
    frame.loc[flip, "_label"] = 1.0
    return frame


def ece(y: np.ndarray, s: np.ndarray) -> float:
    """Expected calibration error over 10 equal-width bins, counted here independently."""
    bins = np.minimum((s * 10).astype(int), 9)
    return float(
        sum(
            abs(y[bins == b].mean() - s[bins == b].mean()) * (bins == b).mean()
            for b in range(10)
            if (bins == b).any()
        )
    )


def test_the_version_serves_calibrated_scores_and_the_gate_judges_them(home: Path) -> None:
    store = make_store(home / "store")
    spec = write_spec(home, "shifted", models="[xgboost]")
    load_features(store, "shifted", "binary", 40, 250, frame=shifted_features())
    assets = [*build_train_assets(spec), *build_evaluate_assets(spec)]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            assets,
            instance=instance,
            resources=store.resources(),
            run_config={"ops": {"shifted__training_set": {"config": {"as_of": "2024-02-08"}}}},
        )
    assert result.success
    ref = result.output_for_node("shifted__model_candidate")
    meta = {
        k: v.value
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "model_candidate"
        for k, v in e.materialization.metadata.items()
    }
    assert meta["calibration"] in ("isotonic", "sigmoid")
    assert (
        meta["validation_log_loss_after_calibration"]
        < meta["validation_log_loss_before_calibration"]
    )

    # Stored with the version: in the logged model's metadata and the version's tags.
    store.tracking.client()
    stored = mlflow.models.get_model_info(ref.uri).metadata
    assert stored[CALIBRATION]["method"] == meta["calibration"]
    version = store.tracking.client().get_model_version(ref.registered_name, ref.version)
    assert version.tags["calibration"] == meta["calibration"]
    assert float(version.tags["decision_threshold"]) == stored[DECISION_THRESHOLD]["value"]

    predictor = load_predictor(ref, store.tracking)
    test = store.frame("SELECT * FROM shifted.training_set WHERE _split = 'test'")
    valid = store.frame("SELECT * FROM shifted.training_set WHERE _split = 'validation'")
    raw, served = predictor.raw_predict(test), predictor.predict(test)
    np.testing.assert_array_equal(served, predictor.calibration.apply(raw))
    y = test["_label"].to_numpy()
    assert ece(y, served) < ece(y, raw)

    # The calibration gate judged the served (calibrated) scores, not the raw ones.
    (gate,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "calibration"]
    observed = gate.metadata["observed"].value
    assert observed == pytest.approx(ece(y, served), abs=1e-9)
    assert abs(observed - ece(y, raw)) > 0.02
    assert meta["calibration"] in gate.metadata["detail"].value

    # The threshold was chosen on the validation split's served scores, never on the test split.
    on_validation = choose_threshold(
        valid["_label"].to_numpy(), predictor.predict(valid), spec.evaluation.threshold
    )
    assert predictor.threshold == on_validation.value == meta["decision_threshold"]
