"""Metrics of a model's predictions on held-out rows, one unit per metric.

A metric that is undefined on the given rows (ROC AUC with one class, R² of a constant target,
precision with no predicted positive) is NaN with a flag saying why, never a silent 0: a 0 would
read as "a terrible model" and a gate would compare against it as if it were measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from ml_assets.core.metrics import EvaluationError, metric_names
from ml_assets.core.model import Task
from ml_assets.core.scores import decision_metrics

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    rows: int
    mean_score: float  # NaN for an empty bin
    positive_rate: float  # NaN for an empty bin


@dataclass(frozen=True)
class Metrics:
    """Every metric of the task on one set of rows; NaN values are explained in `flags`."""

    task: Task
    rows: int
    label_mean: float  # share of positives for binary, mean label for regression
    values: dict[str, float]  # metric name -> value, in metric_names(task) order
    threshold: float | None = None  # decision threshold behind f1/precision/recall
    flags: tuple[str, ...] = ()  # why a value is NaN, e.g. "single_class"
    calibration: tuple[CalibrationBin, ...] = field(default=(), repr=False)  # binary only

    def __getitem__(self, metric: str) -> float:
        if metric not in self.values:
            raise EvaluationError(
                f"metric {metric!r} not computed for task {self.task!r}; have {list(self.values)}"
            )
        return self.values[metric]

    def to_json(self) -> dict[str, float | None]:
        """Values for JSON (metadata, audit rows): NaN becomes null, which JSON can carry."""
        return {k: (None if math.isnan(v) else v) for k, v in self.values.items()}


def _as_arrays(y_true: object, y_score: object) -> tuple[np.ndarray, np.ndarray]:
    try:
        t = np.asarray(y_true, dtype=float).reshape(-1)
        s = np.asarray(y_score, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"labels and scores must be numeric: {exc}") from None
    if t.shape != s.shape:
        raise EvaluationError(f"{t.size} labels but {s.size} scores")
    if t.size == 0:
        raise EvaluationError("no rows to evaluate")
    for name, arr in (("labels", t), ("scores", s)):
        bad = int((~np.isfinite(arr)).sum())
        if bad:
            raise EvaluationError(f"{bad} of {arr.size} {name} are NaN or infinite")
    return t, s


def calibration_bins(
    y_true: np.ndarray, y_score: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[CalibrationBin, ...]:
    """Equal-width bins over [0, 1]: [0, .1), [.1, .2), ..., [.9, 1.0] (the last one closed)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # digitize against the interior edges: index = number of edges <= score, so 1.0 -> last bin.
    index = np.digitize(y_score, edges[1:-1], right=False)
    out = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        out.append(
            CalibrationBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                rows=n,
                mean_score=float(y_score[mask].mean()) if n else math.nan,
                positive_rate=float(y_true[mask].mean()) if n else math.nan,
            )
        )
    return tuple(out)


def expected_calibration_error(bins: tuple[CalibrationBin, ...]) -> float:
    """ECE = sum over bins of (rows in bin / rows) * |positive rate - mean score|."""
    total = sum(b.rows for b in bins)
    return float(sum(b.rows / total * abs(b.positive_rate - b.mean_score) for b in bins if b.rows))


# The threshold-free binary metrics, each computable alone (`metric_value`): ROC AUC and PR AUC
# are NaN when the rows hold one class.
_BINARY_SCORE_METRICS = {
    "roc_auc": lambda t, s, single: math.nan if single else float(roc_auc_score(t, s)),
    "pr_auc": lambda t, s, single: math.nan if single else float(average_precision_score(t, s)),
    "log_loss": lambda t, s, single: float(log_loss(t, s, labels=[0, 1])),
    "brier": lambda t, s, single: float(np.mean((s - t) ** 2)),
}


def _binary_input(t: np.ndarray, s: np.ndarray) -> None:
    if not np.isin(t, (0.0, 1.0)).all():
        raise EvaluationError(f"binary labels must be 0 or 1; found {sorted(set(t.tolist()))[:5]}")
    if s.min() < 0.0 or s.max() > 1.0:
        raise EvaluationError(
            f"binary scores must be probabilities in [0, 1]; found [{s.min():g}, {s.max():g}]"
        )


def _binary(t: np.ndarray, s: np.ndarray, threshold: float) -> Metrics:
    _binary_input(t, s)
    if not 0.0 <= threshold <= 1.0:
        raise EvaluationError(f"threshold {threshold} is outside [0, 1]")
    flags: list[str] = []
    positives = int(t.sum())
    single_class = positives in (0, t.size)
    if single_class:
        flags.append(
            f"single_class: all {t.size} labels are {int(t[0])}; roc_auc, pr_auc undefined"
        )
    at = decision_metrics(t, s, threshold)
    if math.isnan(at["precision"]):
        flags.append(f"no_predicted_positives: no score >= {threshold}; precision undefined")
    calibration = calibration_bins(t, s)
    values = {
        **{name: fn(t, s, single_class) for name, fn in _BINARY_SCORE_METRICS.items()},
        **at,  # f1, precision, recall at the decision threshold
        "f1_at_0.5": decision_metrics(t, s, 0.5)["f1"],
        "ece": expected_calibration_error(calibration),
    }
    return Metrics(
        task="binary",
        rows=int(t.size),
        label_mean=positives / t.size,
        values=values,
        threshold=threshold,
        flags=tuple(flags),
        calibration=calibration,
    )


def _regression(t: np.ndarray, s: np.ndarray) -> Metrics:
    flags: list[str] = []
    err = s - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    if ss_tot == 0.0:
        flags.append(f"constant_target: all {t.size} labels equal {t[0]:g}; r2 undefined")
    values = {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot else math.nan,
    }
    return Metrics(
        task="regression",
        rows=int(t.size),
        label_mean=float(t.mean()),
        values=values,
        flags=tuple(flags),
    )


def evaluate_predictions(
    y_true: object, y_score: object, task: str, threshold: float = 0.5
) -> Metrics:
    """All metrics of `task` for labels and scores (probabilities of class 1, or values).

    Raises EvaluationError on empty, misaligned, NaN or out-of-range input; returns NaN plus a flag
    for a metric that the rows cannot define (see the module docstring).
    """
    metric_names(task)
    t, s = _as_arrays(y_true, y_score)
    return _binary(t, s, threshold) if task == "binary" else _regression(t, s)


def metric_value(
    y_true: object, y_score: object, task: str, metric: str, threshold: float = 0.5
) -> float:
    """One metric, the value `evaluate_predictions` gives it, without computing the others.

    Bootstraps call it hundreds of times per evaluation: computing every metric (both AUCs, the
    calibration bins, F1 at two thresholds) for each draw was most of the evaluation step."""
    if task == "binary" and metric in _BINARY_SCORE_METRICS:
        metric_names(task)
        t, s = _as_arrays(y_true, y_score)
        _binary_input(t, s)
        positives = int(t.sum())
        return _BINARY_SCORE_METRICS[metric](t, s, positives in (0, t.size))
    return evaluate_predictions(y_true, y_score, task, threshold)[metric]
