"""What a registered binary version adds on top of its raw model: a calibration and a threshold.

Both are fitted on the validation split when the model is trained and stored in the logged
model's metadata, beside the feature schema, so every consumer of the version (evaluation,
scoring, monitoring, a future HTTP service) applies the same map from raw model output to a
probability and the same decision threshold, read from the version and never from the spec.
Plain parameters (no pickled estimator): the map is a few hundred numbers, readable in MLmodel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

CalibrationMethod = Literal["isotonic", "sigmoid"]
# A version registered before thresholds were chosen was always judged at 0.5: reading it back
# without a stored threshold keeps exactly the decisions it was promoted with.
LEGACY_THRESHOLD = 0.5
# Log-odds of a probability are finite only inside (0, 1); scores at exactly 0 or 1 (an isotonic
# step, a saturated tree ensemble) are clipped this far in before a sigmoid calibration.
LOGIT_EPS = 1e-7


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype="float64"), LOGIT_EPS, 1 - LOGIT_EPS)
    return np.log(q / (1 - q))


def decision_counts(y: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of the decisions `score >= threshold`."""
    decided = np.asarray(scores) >= threshold
    positive = np.asarray(y) == 1
    tp = int((decided & positive).sum())
    fp = int((decided & ~positive).sum())
    fn = int((~decided & positive).sum())
    return tp, fp, fn


def decision_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """F1, precision and recall of the decisions `score >= threshold`; NaN where undefined (no
    predicted positive: precision; no positive label: recall). F1 = 2TP / (2TP + FP + FN) is a
    real 0 when positives exist and none is caught."""
    tp, fp, fn = decision_counts(y, scores, threshold)
    return {
        "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else math.nan,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
    }


@dataclass(frozen=True)
class Calibration:
    """A monotone map from the model's raw probability to a calibrated one.

    isotonic: piecewise linear through (`x`, `y`) and flat beyond its ends (what scikit-learn's
    `IsotonicRegression(out_of_bounds="clip")` predicts); sigmoid: Platt scaling on the log-odds,
    `1 / (1 + exp(-(slope * logit(p) + intercept)))`.
    """

    method: CalibrationMethod
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        s = np.asarray(raw, dtype="float64")
        if self.method == "isotonic":
            return np.interp(s, np.asarray(self.x), np.asarray(self.y))
        z = self.slope * logit(s) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"method": self.method}
        if self.method == "isotonic":
            out.update(x=list(self.x), y=list(self.y))
        else:
            out.update(slope=self.slope, intercept=self.intercept)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping) -> Calibration:
        if raw["method"] == "isotonic":
            return cls("isotonic", x=tuple(raw["x"]), y=tuple(raw["y"]))
        if raw["method"] == "sigmoid":
            return cls("sigmoid", slope=float(raw["slope"]), intercept=float(raw["intercept"]))
        raise ValueError(f"unknown calibration method {raw['method']!r}")


@dataclass(frozen=True)
class DecisionThreshold:
    """A version's decision threshold (`score >= value` is a positive decision), and its origin.

    `validation` holds f1/precision/recall at `value` on the validation split it was chosen on;
    `reached` is False when a target_* policy's target was not reached on validation (the
    threshold is then the closest one, and `note` says so).
    """

    value: float
    policy: str  # fixed | max_f1 | target_precision | target_recall | legacy
    target: float | None = None
    reached: bool = True
    validation: Mapping[str, float] = field(default_factory=dict)
    note: str = ""

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores, dtype="float64") >= self.value

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "validation": dict(self.validation)}

    @classmethod
    def from_dict(cls, raw: Mapping) -> DecisionThreshold:
        return cls(
            value=float(raw["value"]),
            policy=str(raw["policy"]),
            target=None if raw.get("target") is None else float(raw["target"]),
            reached=bool(raw.get("reached", True)),
            validation={
                k: math.nan if v is None else float(v)
                for k, v in (raw.get("validation") or {}).items()
            },
            note=str(raw.get("note", "")),
        )

    @classmethod
    def legacy(cls) -> DecisionThreshold:
        return cls(LEGACY_THRESHOLD, "legacy", note="registered before thresholds were stored: 0.5")
