"""The decision threshold of a binary version, chosen on the validation split by the spec's policy.

A fixed 0.5 is right only for a calibrated model whose errors cost the same both ways and whose
positives are common; on flights (24-32% positives) it caught about 1% of the late flights. The
threshold is chosen on the (calibrated) validation scores the version will serve, never on the
test holdout, which then measures it as it will be used.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from ml_assets.core.scores import DecisionThreshold, decision_metrics
from ml_assets.core.spec import ThresholdPolicy


def choose_threshold(
    y: np.ndarray, scores: np.ndarray, policy: ThresholdPolicy
) -> DecisionThreshold:
    """The threshold `policy` picks on validation labels `y` and served scores `scores`.

    Candidates are the distinct scores (a decision is `score >= threshold`). max_f1: the best F1
    (ties: the highest threshold, the fewest positives); target_precision: the lowest threshold
    whose precision reaches the target (the most recall at that precision); target_recall: the
    highest whose recall reaches it (the most precision). An unreachable precision target takes
    the threshold of best precision and says so in `note`.
    """
    y, s = np.asarray(y, dtype="float64"), np.asarray(scores, dtype="float64")
    if policy.policy == "fixed":
        value = float(policy.value)
        return DecisionThreshold(value, "fixed", policy.value, True, decision_metrics(y, s, value))
    if len(np.unique(y)) < 2:
        raise ValueError(f"threshold policy {policy.policy} needs both classes in validation")
    # precision[i], recall[i] are those of `s >= thresholds[i]`; the last pair has no threshold.
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]
    reached, note = True, ""
    if policy.policy == "max_f1":
        f1 = np.divide(
            2 * precision * recall,
            precision + recall,
            out=np.zeros_like(precision),
            where=precision + recall > 0,
        )
        i = int(np.flatnonzero(f1 == f1.max())[-1])
    elif policy.policy == "target_precision":
        ok = np.flatnonzero(precision >= policy.value)
        if ok.size:
            i = int(ok[0])
        else:
            i = int(np.flatnonzero(precision == precision.max())[0])
            reached = False
            note = (
                f"no validation threshold reaches precision {policy.value}; the best is "
                f"{precision[i]:.4f}"
            )
    else:  # target_recall: recall falls as the threshold rises
        i = int(np.flatnonzero(recall >= policy.value)[-1])
    value = float(thresholds[i])
    return DecisionThreshold(
        value, policy.policy, policy.value, reached, decision_metrics(y, s, value), note
    )
