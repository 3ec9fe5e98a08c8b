"""Metrics against scikit-learn, calibration, slices, champion comparison and gates."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from ml_assets.core.metrics import EvaluationError, higher_is_better
from ml_assets.core.spec import EvaluationSection
from ml_assets.layers.evaluate.compare import compare
from ml_assets.layers.evaluate.gates import CalibrationContext, gate_results, gate_specs, verdict
from ml_assets.layers.evaluate.metrics import (
    calibration_bins,
    evaluate_predictions,
    metric_value,
)
from ml_assets.layers.evaluate.slices import slice_metrics
from ml_assets_tests.layers.evaluate.synthetic import binary_frame, fit_linear, scores, skill_of

RNG = np.random.default_rng(7)
Y = RNG.integers(0, 2, 500)
P = np.clip(0.35 * Y + 0.65 * RNG.random(500), 0, 1)


def test_binary_metrics_match_sklearn() -> None:
    m = evaluate_predictions(Y, P, "binary", threshold=0.4)
    pred = (P >= 0.4).astype(int)
    expected = {
        "roc_auc": skm.roc_auc_score(Y, P),
        "pr_auc": skm.average_precision_score(Y, P),
        "log_loss": skm.log_loss(Y, P),
        "brier": skm.brier_score_loss(Y, P),
        "f1": skm.f1_score(Y, pred),
        "precision": skm.precision_score(Y, pred),
        "recall": skm.recall_score(Y, pred),
        # Beside the decision threshold's F1, always: what the fixed 0.5 would have given.
        "f1_at_0.5": skm.f1_score(Y, (P >= 0.5).astype(int)),
    }
    assert m.values["f1"] != m.values["f1_at_0.5"]
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, rel=1e-9), name
    assert m.rows == 500 and m.label_mean == pytest.approx(Y.mean())
    assert m.threshold == 0.4 and not m.flags
    assert higher_is_better("roc_auc") and not higher_is_better("log_loss")


@pytest.mark.parametrize("labels", ["mixed", "one_class"])
def test_one_metric_alone_is_the_value_of_all_metrics(labels: str) -> None:
    """Bootstraps compute one metric per draw; it must be exactly what the full set reports."""
    rng = np.random.default_rng(11)
    t = (rng.random(700) < 0.3).astype(float) if labels == "mixed" else np.zeros(700)
    s = rng.random(700)
    full = evaluate_predictions(t, s, "binary", 0.4)
    for metric, value in full.values.items():
        alone = metric_value(t, s, "binary", metric, 0.4)
        assert alone == value or (math.isnan(alone) and math.isnan(value)), metric
    y, p = rng.normal(size=300), rng.normal(size=300)
    for metric, value in evaluate_predictions(y, p, "regression").values.items():
        assert metric_value(y, p, "regression", metric) == value, metric
    with pytest.raises(EvaluationError, match="probabilities"):
        metric_value(t, s + 1.0, "binary", "roc_auc")


def test_regression_metrics_match_sklearn() -> None:
    t = RNG.normal(10, 3, 300)
    s = t + RNG.normal(0, 1, 300)
    m = evaluate_predictions(t, s, "regression")
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(t, s))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(t, s))
    assert m["r2"] == pytest.approx(skm.r2_score(t, s))
    assert list(m.values) == ["rmse", "mae", "r2"] and not higher_is_better("rmse")


def test_ece_calibration_bins_match_sklearn_and_known_values() -> None:
    bins = [b for b in calibration_bins(Y.astype(float), P) if b.rows]
    prob_true, prob_pred = calibration_curve(Y, P, n_bins=10, strategy="uniform")
    assert np.allclose([b.positive_rate for b in bins], prob_true)
    assert np.allclose([b.mean_score for b in bins], prob_pred)
    # Half the rows say 0.05 and none is positive, half say 0.95 and all are: |gap| 0.05 each.
    y = np.r_[np.zeros(100), np.ones(100)]
    assert evaluate_predictions(y, np.r_[np.full(100, 0.05), np.full(100, 0.95)], "binary")[
        "ece"
    ] == pytest.approx(0.05)
    # A score of exactly 1.0 falls in the last (closed) bin.
    assert calibration_bins(np.array([1.0]), np.array([1.0]))[-1].rows == 1


def test_ece_perfectly_calibrated_vs_miscalibrated() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(100_000)
    y = (rng.random(100_000) < p).astype(int)
    calibrated = evaluate_predictions(y, p, "binary")["ece"]
    overconfident = evaluate_predictions(y, p**3, "binary")["ece"]
    assert calibrated < 0.01
    # E|p - p^3| over U(0,1) = 1/2 - 1/4 = 0.25, up to binning and sampling.
    assert overconfident == pytest.approx(0.25, abs=0.02)


def test_degenerate_inputs_are_nan_with_flags_or_errors() -> None:
    single = evaluate_predictions(np.zeros(50), np.linspace(0, 0.4, 50), "binary")
    assert math.isnan(single["roc_auc"]) and math.isnan(single["pr_auc"])
    assert math.isnan(single["precision"]) and math.isnan(single["recall"])
    assert any(f.startswith("single_class") for f in single.flags)
    assert any(f.startswith("no_predicted_positives") for f in single.flags)
    assert single.to_json()["roc_auc"] is None and single["brier"] > 0
    constant = evaluate_predictions(np.full(20, 3.0), np.linspace(2, 4, 20), "regression")
    assert math.isnan(constant["r2"]) and constant.flags[0].startswith("constant_target")
    for y, s, task, match in [
        ([], [], "binary", "no rows"),
        ([0, 1], [0.1], "binary", "2 labels but 1 scores"),
        ([0, 1], [0.1, np.nan], "binary", "NaN"),
        ([0, 2], [0.1, 0.2], "binary", "0 or 1"),
        ([0, 1], [0.1, 1.2], "binary", r"\[0, 1\]"),
        ([0, 1], [0.1, 0.2], "ranking", "unknown task"),
    ]:
        with pytest.raises(EvaluationError, match=match):
            evaluate_predictions(y, s, task)
    with pytest.raises(EvaluationError, match="not computed"):
        single["rmse"]


def test_slice_gap_excludes_small_slices() -> None:
    frame = binary_frame(4_000, seed=3)
    y = frame["y"].to_numpy()
    s = scores(fit_linear(frame, ["a"], ["c"]), frame)
    tiny = (frame["segment"] == "tiny").to_numpy()
    s[tiny] = 1 - s[tiny]  # the model is wrong on the tiny segment
    report = slice_metrics(frame, ["segment", "c"], y, s, "binary", "roc_auc", min_rows=200)
    by_value = {(x.column, x.value): x for x in report.slices}
    assert by_value[("segment", "tiny")].rows == 50 and not by_value[("segment", "tiny")].eligible
    assert by_value[("segment", "tiny")].note == "small: 50 < 200 rows"
    assert [x.value for x in report.small] == ["tiny"]
    eligible = {k: skm.roc_auc_score(y[m], s[m]) for k, m in _masks(frame).items()}
    worst = min(eligible, key=eligible.get)
    assert (report.worst.column, report.worst.value) == worst
    assert report.overall == pytest.approx(skm.roc_auc_score(y, s))
    assert report.gap == pytest.approx(report.overall - eligible[worst])
    # With the tiny slice allowed in, it becomes the worst and the gap grows.
    loose = slice_metrics(frame, ["segment", "c"], y, s, "binary", "roc_auc", min_rows=10)
    assert loose.worst.value == "tiny" and loose.gap > report.gap + 0.2


def _masks(frame: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for col in ("segment", "c"):
        for value in frame[col].unique():
            mask = (frame[col] == value).to_numpy()
            if mask.sum() >= 200:
                out[(col, value)] = mask
    return out


def test_slice_gap_is_positive_when_worse_for_rmse_and_handles_nulls() -> None:
    t = np.r_[np.zeros(300), np.zeros(300)]
    s = np.r_[np.full(300, 1.0), np.full(300, 3.0)]  # errors 1 and 3
    frame = pd.DataFrame({"g": ["a"] * 300 + [None] * 300})
    report = slice_metrics(frame, ["g"], t, s, "regression", "rmse", min_rows=100)
    assert report.worst.value == "NULL" and report.worst.metric == pytest.approx(3.0)
    # An error metric's gap is relative: (slice RMSE - overall RMSE) / overall RMSE.
    overall = math.sqrt(5.0)
    assert report.gap == pytest.approx((3.0 - overall) / overall) and report.gap > 0
    assert report.gap_kind == "relative" and report.worst.gap_low == pytest.approx(report.gap)
    with pytest.raises(EvaluationError, match="not defined for task"):
        slice_metrics(frame, ["g"], t, s, "regression", "roc_auc", min_rows=100)
    with pytest.raises(EvaluationError, match="not in the frame"):
        slice_metrics(frame, ["nope"], t, s, "regression", "rmse", min_rows=100)


def test_compare_non_inferiority_in_both_directions() -> None:
    good = evaluate_predictions(Y, P, "binary")
    worse = evaluate_predictions(Y, 0.5 * P + 0.5 * RNG.random(500), "binary")
    assert worse["roc_auc"] < good["roc_auc"] - 0.05
    up = compare(good, worse, "roc_auc", 0.01)
    assert up.non_inferior and up.improvement > 0 and up.delta == up.deltas["roc_auc"]
    down = compare(worse, good, "roc_auc", 0.01)
    assert not down.non_inferior and "inferior" in down.detail
    assert compare(worse, good, "roc_auc", 1.0).non_inferior  # within a huge tolerance
    # Lower is better: a larger log loss is the worse one.
    assert compare(good, worse, "log_loss", 0.0).non_inferior
    assert not compare(worse, good, "log_loss", 0.0).non_inferior
    first = compare(good, None, "roc_auc", 0.01)
    assert first.non_inferior and not first.has_champion and first.delta is None


def test_compare_regression_and_exact_bound() -> None:
    t = RNG.normal(size=400)
    close = evaluate_predictions(t, t + RNG.normal(0, 0.5, 400), "regression")
    far = evaluate_predictions(t, t + RNG.normal(0, 1.0, 400), "regression")
    assert compare(close, far, "rmse", 0.0).non_inferior
    verdict_far = compare(far, close, "rmse", 0.05)
    assert not verdict_far.non_inferior and verdict_far.improvement < -0.05
    assert compare(far, close, "rmse", far["rmse"] - close["rmse"]).non_inferior
    with pytest.raises(EvaluationError, match="differs"):
        compare(close, evaluate_predictions(Y, P, "binary"), "rmse", 0.0)


def _gates(candidate_cols, champion_cols, section: EvaluationSection, seed: int = 11):
    train, test = binary_frame(6_000, seed=seed), binary_frame(3_000, seed=seed + 1)
    y = test["y"].to_numpy()
    cand_scores = scores(fit_linear(train, *candidate_cols), test)
    cand = evaluate_predictions(y, cand_scores, "binary", 0.5)
    champ = (
        evaluate_predictions(y, scores(fit_linear(train, *champion_cols), test), "binary")
        if champion_cols
        else None
    )
    comparison = compare(cand, champ, section.metric, section.non_inferiority_tolerance)
    slices = slice_metrics(
        test, ["segment", "c"], y, cand_scores, "binary", section.metric, section.min_slice_rows
    )
    skill = skill_of(cand, train["y"].to_numpy(), y)
    gates = gate_results(cand, comparison, slices, skill, section)
    return {g.name: g for g in gates}, verdict(gates)


def test_gates_good_candidate_passes(flights_spec) -> None:
    section = flights_spec.evaluation
    gates, v = _gates((["a", "b"], ["c"]), (["a"], []), section)
    assert [g.name for g in gates.values()] == [s.name for s in gate_specs(section)]
    assert all(g.passed for g in gates.values() if g.blocking), gates
    assert v.promote and not v.failed_blocking
    assert gates["non_inferiority"].observed > 0  # it beats the champion
    # The tiny segment (37 rows) is below min_slice_rows: named in the slice gap, not judged.
    assert "1 slice(s) under 200 rows not judged: segment=tiny (37)" in gates["slice_gap"].detail
    assert "warnings" not in v.reason
    first, v_first = _gates((["a", "b"], ["c"]), None, section)
    assert first["non_inferiority"].passed and first["non_inferiority"].expected.startswith("no")
    assert v_first.promote


def test_gates_worse_candidate_fails_non_inferiority(flights_spec) -> None:
    section = flights_spec.evaluation
    gates, v = _gates((["a"], []), (["a"], ["c"]), section)
    assert gates["metric_floor"].passed  # good enough in absolute terms...
    assert not gates["non_inferiority"].passed  # ...but worse than the champion
    assert not v.promote and v.failed_blocking == ("non_inferiority",)
    assert "non_inferiority" in v.reason


def test_gates_leaky_candidate_fails_leakage_guard(flights_spec) -> None:
    section = flights_spec.evaluation
    gates, v = _gates((["a", "leak"], ["c"]), (["a"], ["c"]), section)
    assert gates["leakage_guard"].observed > section.leakage_ceiling
    assert not gates["leakage_guard"].passed and "leakage_guard" in v.failed_blocking
    assert "encodes the label" in gates["leakage_guard"].detail


def test_gate_floor_and_slice_gap_for_regression_direction() -> None:
    section = EvaluationSection(metric="rmse", floor=1.0, max_slice_gap=0.5, min_slice_rows=100)
    t = np.zeros(600)
    s = np.r_[np.full(300, 0.5), np.full(300, 1.5)]
    m = evaluate_predictions(t, s, "regression")
    slices = slice_metrics(
        pd.DataFrame({"g": ["a"] * 300 + ["b"] * 300}), ["g"], t, s, "regression", "rmse", 100
    )
    skill = skill_of(m, np.full(10, 1.0), t)  # the training mean, 1.0, is the baseline
    comparison = compare(m, None, "rmse", 0.0)
    gates = {g.name: g for g in gate_results(m, comparison, slices, skill, section)}
    assert m["rmse"] > 1.0 and not gates["metric_floor"].passed
    assert gates["metric_floor"].expected == "<= 1.0"
    # Relative for RMSE (was 1.5 - rmse in label units); constant errors leave no bootstrap noise.
    assert gates["slice_gap"].observed == pytest.approx((1.5 - m["rmse"]) / m["rmse"])
    assert gates["slice_gap"].passed and gates["slice_gap"].expected == "<= 0.5 (relative)"
    assert gates["calibration"].passed and gates["calibration"].observed is None
    with pytest.raises(ValueError, match="no blocking"):
        verdict([g for g in gates.values() if not g.blocking])


def test_a_failed_calibration_gate_says_how_much_is_a_shift_of_base_rate() -> None:
    """Scores calibrated to a 20% base rate, judged on a holdout whose rate is 35%: the gate
    fails and its detail names both rates and the calibration-in-the-large part of the ECE."""
    rng = np.random.default_rng(3)
    p_true = rng.uniform(0.05, 0.65, 20_000)  # mean 0.35
    y = (rng.random(20_000) < p_true).astype(int)
    served = np.clip(p_true - 0.15, 0.001, 1)  # what a calibrator fitted at 0.20 would give
    m = evaluate_predictions(y, served, "binary", threshold=0.3)
    section = EvaluationSection(floor=0.5, max_calibration_error=0.05)
    slices = slice_metrics(
        pd.DataFrame(index=range(len(y))), [], y, served, "binary", "roc_auc", 200
    )
    skill = skill_of(m, np.full(10, 0.2), y)
    context = CalibrationContext("isotonic", fitted_label_rate=0.2, mean_score=float(served.mean()))
    gates = {
        g.name: g
        for g in gate_results(m, compare(m, None, "roc_auc", 0.0), slices, skill, section, context)
    }
    gate = gates["calibration"]
    offset = abs(served.mean() - y.mean())
    assert not gate.passed and gate.observed >= offset - 1e-9
    assert f"label rate is {y.mean():.3f}" in gate.detail and "had 0.200" in gate.detail
    assert f"so {offset:.3f} of the ECE is that shift of base rate" in gate.detail
    # Without the context (or when the gate passes) the detail stays the plain ECE.
    plain = {
        g.name: g for g in gate_results(m, compare(m, None, "roc_auc", 0.0), slices, skill, section)
    }["calibration"]
    assert "why" not in plain.detail
