"""Recalibrate a binary model's scores on the validation split, only where that helps.

Why at all: the models are fit on the train split, and the flights label rate moves from one
window to the next (in the 2013-12-31 window: 17.6% positives in train, 40.6% in validation), so
raw scores carry the train split's base rate; a map fitted on the newer validation days moves
them to the recent one. Nothing in training reweights classes (no `scale_pos_weight`, no
`class_weight`), so there is no weighting to undo: the shift is the data's.

Why cross-fitted: a calibrator judged on the rows it was fitted on always looks better (isotonic
regression is the best monotone fit of those very rows, ECE 0 in-sample). So each method is
fitted on the other folds of the validation days and scored on the held-out fold (days are
never split, since a day's flights are delayed together); a method is kept only when that
out-of-fold log loss beats the raw scores' on the same rows, and it is then refitted on the whole
validation split. The test split is never seen here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold

from ml_assets.core.scores import Calibration, CalibrationMethod, logit

FOLDS = 5
METHODS: tuple[CalibrationMethod, ...] = ("isotonic", "sigmoid")


@dataclass(frozen=True)
class CalibrationFit:
    """Which calibrator (if any) was kept, and the validation log losses behind the choice."""

    calibration: Calibration | None  # None: the raw scores are kept
    raw_log_loss: float  # validation log loss of the raw scores
    cross_fitted: dict[str, float] = field(default_factory=dict)  # method -> out-of-fold loss
    note: str = ""

    @property
    def method(self) -> str:
        return "none" if self.calibration is None else self.calibration.method

    @property
    def log_loss(self) -> float:
        """The validation log loss of the scores served: calibrated (out of fold) or raw."""
        if self.calibration is None:
            return self.raw_log_loss
        return self.cross_fitted[self.calibration.method]


def fit_method(method: CalibrationMethod, y: np.ndarray, raw: np.ndarray) -> Calibration:
    """One calibrator fitted on (raw score, label) pairs, as plain parameters."""
    if method == "isotonic":
        # Ends kept half a row inside (0, 1): an end block with no positive must not promise a
        # probability of exactly 0, which one positive on the holdout would make an infinite loss.
        eps = 0.5 / len(y)
        iso = IsotonicRegression(y_min=eps, y_max=1 - eps, out_of_bounds="clip").fit(raw, y)
        return Calibration(
            "isotonic",
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
        )
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(logit(raw)[:, None], y)
    return Calibration(
        "sigmoid", slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0])
    )


def _loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))


def calibrate(
    y: np.ndarray, raw: np.ndarray, days: np.ndarray, choice: str = "auto"
) -> CalibrationFit:
    """The calibration to store with a binary version: `choice` is the spec's
    `training.calibration` (auto = the better of isotonic and sigmoid, or none)."""
    y, raw = np.asarray(y, dtype="float64"), np.asarray(raw, dtype="float64")
    raw_loss = _loss(y, raw)
    methods = METHODS if choice == "auto" else (() if choice == "none" else (choice,))
    if not methods:
        return CalibrationFit(None, raw_loss, note="calibration: none in the spec")
    groups = np.unique(days, return_inverse=True)[1]
    folds = min(FOLDS, int(groups.max()) + 1)
    if folds < 2 or len(np.unique(y)) < 2:
        return CalibrationFit(None, raw_loss, note="too few validation days or one class")
    cross = {}
    for method in methods:
        out = np.empty_like(raw)
        for fit_rows, held in GroupKFold(n_splits=folds).split(raw, y, groups):
            if len(np.unique(y[fit_rows])) < 2:
                out[held] = raw[held]  # nothing to learn from one class: keep the raw score
                continue
            out[held] = fit_method(method, y[fit_rows], raw[fit_rows]).apply(raw[held])
        cross[method] = _loss(y, out)
    best = min(cross, key=cross.__getitem__)
    if cross[best] >= raw_loss:
        note = f"kept raw scores: no calibrator beat their validation log loss {raw_loss:.4f}"
        return CalibrationFit(None, raw_loss, cross, note)
    note = f"{best}: cross-fitted validation log loss {raw_loss:.4f} -> {cross[best]:.4f}"
    return CalibrationFit(fit_method(best, y, raw), raw_loss, cross, note)
