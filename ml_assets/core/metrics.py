"""The metric registry: every metric the project reports, its task and which direction is better.

Training picks a family, evaluation gates a candidate and monitoring judges realized performance
with the same names and the same directions, so a metric can never be "better" in one layer and
"worse" in another.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml_assets.core.model import Task


class EvaluationError(ValueError):
    """Predictions, labels or a metric name cannot be evaluated as given."""


@dataclass(frozen=True)
class MetricInfo:
    name: str
    task: Task
    higher_is_better: bool
    description: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("roc_auc", "binary", True, "area under the ROC curve"),
        MetricInfo("pr_auc", "binary", True, "average precision"),
        MetricInfo("log_loss", "binary", False, "cross-entropy of the probabilities"),
        MetricInfo("brier", "binary", False, "mean squared error of the probabilities"),
        MetricInfo("f1", "binary", True, "F1 at the decision threshold"),
        MetricInfo("precision", "binary", True, "precision at the decision threshold"),
        MetricInfo("recall", "binary", True, "recall at the decision threshold"),
        MetricInfo("ece", "binary", False, "expected calibration error, 10 equal-width bins"),
        MetricInfo("rmse", "regression", False, "root mean squared error"),
        MetricInfo("mae", "regression", False, "mean absolute error"),
        MetricInfo("r2", "regression", True, "coefficient of determination"),
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


def check_metric(metric: str, task: str) -> None:
    """A primary metric must exist for the model's task (no RMSE of a classifier)."""
    if metric not in metric_names(task):
        raise EvaluationError(
            f"metric {metric!r} is not defined for task {task!r}; use one of {metric_names(task)}"
        )


def better(metric: str, a: float, b: float) -> bool:
    """Is value `a` of `metric` strictly better than `b`?"""
    return a > b if higher_is_better(metric) else a < b
