"""The metric registry: every metric the project reports, its task and which direction is better.

Training picks a family, evaluation gates a candidate and monitoring judges realized performance
with the same names and the same directions, so a metric can never be "better" in one layer and
"worse" in another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ml_assets.core.model import Task

# How a slice's shortfall against the overall value is measured. Errors and losses scale with the
# label (an RMSE in cents, a log loss in nats), so their gap is relative: (slice - overall) /
# overall. Bounded scores (AUC, F1, ...) already share one scale across datasets: absolute.
GapKind = Literal["absolute", "relative"]


class EvaluationError(ValueError):
    """Predictions, labels or a metric name cannot be evaluated as given."""


@dataclass(frozen=True)
class MetricInfo:
    name: str
    task: Task
    higher_is_better: bool
    description: str
    gap: GapKind  # how the slice gate measures a slice's shortfall (see GapKind)
    # Judge slices by this metric instead. R² of a slice is measured against the slice's own mean,
    # so a slice column that explains the label lowers it where the model is no worse: R² slices
    # are judged by their RMSE relative to the overall RMSE.
    slices_by: str | None = None


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("roc_auc", "binary", True, "area under the ROC curve", "absolute"),
        MetricInfo("pr_auc", "binary", True, "average precision", "absolute"),
        MetricInfo("log_loss", "binary", False, "cross-entropy of the probabilities", "relative"),
        MetricInfo("brier", "binary", False, "mean squared error of the probabilities", "relative"),
        MetricInfo("f1", "binary", True, "F1 at the decision threshold", "absolute"),
        MetricInfo("precision", "binary", True, "precision at the decision threshold", "absolute"),
        MetricInfo("recall", "binary", True, "recall at the decision threshold", "absolute"),
        # Beside the chosen threshold's F1, so a report shows what choosing it gained.
        MetricInfo("f1_at_0.5", "binary", True, "F1 at the fixed threshold 0.5", "absolute"),
        # A calibration error is already on the probability scale and near 0 for a good model, so
        # a ratio to it would be mostly noise: absolute, like the calibration gate's bound.
        MetricInfo(
            "ece", "binary", False, "expected calibration error, 10 equal-width bins", "absolute"
        ),
        MetricInfo("rmse", "regression", False, "root mean squared error", "relative"),
        MetricInfo("mae", "regression", False, "mean absolute error", "relative"),
        MetricInfo("r2", "regression", True, "coefficient of determination", "absolute", "rmse"),
    )
}

# What training selects a family on, and the default primary metric of an evaluation.
PRIMARY: dict[str, str] = {"binary": "roc_auc", "regression": "rmse"}


def metric_names(task: str) -> tuple[str, ...]:
    """The metrics of a task, in registry order."""
    if task not in PRIMARY:
        raise EvaluationError(f"unknown task {task!r}; expected 'binary' or 'regression'")
    return tuple(name for name, m in METRICS.items() if m.task == task)


def higher_is_better(metric: str) -> bool:
    if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}; known metrics: {', '.join(METRICS)}")
    return METRICS[metric].higher_is_better


def slice_gap_rule(metric: str) -> tuple[str, GapKind]:
    """The metric a slice gate compares slices on, and whether its gap is relative or absolute."""
    higher_is_better(metric)  # raises for an unknown metric
    judged = METRICS[metric].slices_by or metric
    return judged, METRICS[judged].gap


def check_metric(metric: str, task: str) -> None:
    """A primary metric must exist for the model's task (no RMSE of a classifier)."""
    if metric not in metric_names(task):
        raise EvaluationError(
            f"metric {metric!r} is not defined for task {task!r}; use one of {metric_names(task)}"
        )


def better(metric: str, a: float, b: float) -> bool:
    """Is value `a` of `metric` strictly better than `b`?"""
    return a > b if higher_is_better(metric) else a < b
