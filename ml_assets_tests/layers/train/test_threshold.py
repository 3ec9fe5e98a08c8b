"""Decision thresholds chosen on validation by the spec's policy, against brute-force references."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from ml_assets.core.spec import EvaluationSection, ThresholdPolicy
from ml_assets.layers.train.threshold import choose_threshold


def rare_positives(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores of a 12%-positive label: almost no score reaches 0.5, so a 0.5
    threshold catches next to nothing, while ranking is informative (AUC about 0.8)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-2.4, 1.0, n)
    p = 1 / (1 + np.exp(-z))
    return (rng.random(n) < p).astype(float), p


def brute_force(y: np.ndarray, s: np.ndarray) -> dict[str, dict[float, float]]:
    """F1, precision and recall of `s >= t` for every distinct score t, by direct counting."""
    t = np.unique(s)
    decided = s[None, :] >= t[:, None]  # thresholds x rows
    tp = (decided & (y == 1)).sum(axis=1)
    fp = (decided & (y == 0)).sum(axis=1)
    fn = (~decided & (y == 1)).sum(axis=1)
    out = {
        "f1": 2 * tp / (2 * tp + fp + fn),
        "precision": tp / np.maximum(tp + fp, 1),
        "recall": tp / (tp + fn),
    }
    return {k: dict(zip(t.tolist(), v.tolist(), strict=True)) for k, v in out.items()}


def test_max_f1_beats_the_fixed_half_and_is_the_best_threshold() -> None:
    y, s = rare_positives()
    chosen = choose_threshold(y, s, ThresholdPolicy(policy="max_f1"))
    reference = brute_force(y, s)["f1"]
    best = max(reference.values())
    assert chosen.validation["f1"] == pytest.approx(best, abs=1e-12)
    assert reference[chosen.value] == pytest.approx(best, abs=1e-12)
    # 0.5 is clearly wrong here: its F1 is a fraction of the chosen one's.
    half = f1_score(y, s >= 0.5)
    assert half < 0.15 and chosen.validation["f1"] > 0.35 > 2 * half
    assert 0.05 < chosen.value < 0.4
    assert chosen.policy == "max_f1" and chosen.reached and chosen.target is None


def test_targets_pick_the_most_recall_or_precision_that_meets_them() -> None:
    y, s = rare_positives(seed=1)
    reference = brute_force(y, s)
    precision, recall = reference["precision"], reference["recall"]

    p = choose_threshold(y, s, ThresholdPolicy(policy="target_precision", value=0.4))
    meeting = [t for t, v in precision.items() if v >= 0.4]
    assert p.value == min(meeting) and p.validation["precision"] >= 0.4 and p.reached
    assert p.validation["recall"] == pytest.approx(recall[p.value])

    r = choose_threshold(y, s, ThresholdPolicy(policy="target_recall", value=0.6))
    meeting = [t for t, v in recall.items() if v >= 0.6]
    assert r.value == max(meeting) and r.validation["recall"] >= 0.6
    assert r.validation["precision"] == pytest.approx(precision[r.value])

    # The top score is a negative: no threshold reaches precision 0.9; the best (0.5) is taken.
    y4, s4 = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.9, 0.8, 0.7, 0.6])
    unreachable = choose_threshold(y4, s4, ThresholdPolicy(policy="target_precision", value=0.9))
    assert not unreachable.reached and "no validation threshold reaches" in unreachable.note
    assert unreachable.value == 0.6 and unreachable.validation["precision"] == 0.5


def test_fixed_and_the_legacy_number() -> None:
    y, s = rare_positives(seed=2)
    # `threshold: 0.3` in a spec, the form before policies, is a fixed policy.
    legacy = EvaluationSection(floor=0.5, threshold=0.3).threshold
    assert legacy == ThresholdPolicy(policy="fixed", value=0.3)
    fixed = choose_threshold(y, s, legacy)
    assert fixed.value == 0.3 and fixed.validation["f1"] == pytest.approx(f1_score(y, s >= 0.3))
    assert EvaluationSection(floor=0.5).threshold.policy == "max_f1"  # the default
    with pytest.raises(ValueError, match="needs a 'value'"):
        ThresholdPolicy(policy="target_recall")
    with pytest.raises(ValueError, match="takes no 'value'"):
        ThresholdPolicy(policy="max_f1", value=0.5)
