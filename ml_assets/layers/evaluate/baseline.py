"""Naive baselines on the holdout, and the candidate's skill against the best of them.

A metric floor says "good enough" only if someone chose it well; a skill score says whether the
model knows anything at all. Skill = 1 - model error / baseline error on the same holdout rows: 0
is no better than the baseline, 1 is perfect, negative is worse (a regression model on a user's
CSV scored R² = -0.86, worse than predicting the mean, and only an unrelated gate stopped it).

Baselines, fitted on the train split only (the rows the model learned from):
- binary: the training label rate, for every row (log loss and Brier skill);
- regression: the training mean, and a seasonal naive forecast, the training mean per weekday of
  the event time (RMSE and MAE skill). Weekly cycles are the seasonality most row-level business
  targets share (orders, deliveries, traffic); a per-weekday mean needs nothing but the event time
  every dataset has, where "the value a season ago" would need an entity's series, which a table
  of independent rows does not have. A weekday absent from training falls back to the mean.
The skill against the *best* baseline (the lowest error on the holdout, per metric) is the bar:
a model must beat every naive forecast, not just the weakest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from ml_assets.core.model import Task
from ml_assets.layers.evaluate.metrics import Metrics, evaluate_predictions

# The error metrics skill is measured on, per task, and the one the gate judges: what the model
# families minimise (log loss, squared error), so the gate asks what training set out to do.
SKILL_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("log_loss", "brier"),
    "regression": ("rmse", "mae"),
}
GATED_SKILL: dict[str, str] = {"binary": "log_loss", "regression": "rmse"}


@dataclass(frozen=True)
class NaiveBaselines:
    """Naive forecasts fitted on the train split: its label mean, and the mean per ISO weekday
    (1 = Monday) of the event time (used for regression)."""

    task: Task
    mean: float
    by_weekday: Mapping[int, float]

    def predictions(self, weekdays: np.ndarray) -> dict[str, np.ndarray]:
        """Each baseline's forecast for holdout rows with these ISO weekdays."""
        days = np.asarray(weekdays, dtype="int64")
        constant = np.full(days.shape, self.mean, dtype="float64")
        if self.task == "binary":
            return {"training_rate": constant}
        seasonal = np.array([self.by_weekday.get(int(d), self.mean) for d in days], dtype="float64")
        return {"training_mean": constant, "weekday_mean": seasonal}


def fit_baselines(task: Task, weekday_stats: list[tuple[int, int, float]]) -> NaiveBaselines:
    """Baselines from (ISO weekday, rows, label mean) of the train split."""
    rows = sum(n for _, n, _ in weekday_stats)
    if rows == 0:
        raise ValueError("the train split has no labelled rows to fit a naive baseline on")
    mean = sum(n * m for _, n, m in weekday_stats) / rows
    return NaiveBaselines(task, float(mean), {int(d): float(m) for d, n, m in weekday_stats if n})


@dataclass(frozen=True)
class Skill:
    """The model against every baseline on one error metric (lower is better)."""

    metric: str
    model: float
    baselines: Mapping[str, float]  # baseline name -> its error on the holdout
    best: str  # the baseline with the lowest error
    skill: float  # 1 - model / best baseline; NaN when the best baseline's error is 0

    @property
    def name(self) -> str:
        return f"{self.metric}_skill"


@dataclass(frozen=True)
class BaselineReport:
    task: Task
    skills: tuple[Skill, ...]
    gated: str  # the metric whose skill the baseline gate judges

    def skill(self, metric: str) -> Skill:
        for s in self.skills:
            if s.metric == metric:
                return s
        raise KeyError(f"no skill on {metric!r}; have {[s.metric for s in self.skills]}")

    @property
    def gate_skill(self) -> Skill:
        return self.skill(self.gated)

    def values(self) -> dict[str, float]:
        """Skill scores by name (`log_loss_skill`, ...): for metrics, metadata and audit rows."""
        return {s.name: s.skill for s in self.skills}

    def to_json(self) -> dict[str, object]:
        return {"task": self.task, "gated": self.gated, "skills": [asdict(s) for s in self.skills]}

    @classmethod
    def from_json(cls, raw: Mapping) -> BaselineReport:
        def num(v: object) -> float:
            return math.nan if v is None else float(v)

        skills = tuple(
            Skill(
                metric=s["metric"],
                model=num(s["model"]),
                baselines={k: num(v) for k, v in s["baselines"].items()},
                best=s["best"],
                skill=num(s["skill"]),
            )
            for s in raw["skills"]
        )
        return cls(task=raw["task"], skills=skills, gated=raw["gated"])


def baseline_skill(
    metrics: Metrics, baselines: NaiveBaselines, y_true: np.ndarray, weekdays: np.ndarray
) -> BaselineReport:
    """The candidate's holdout `metrics` against each naive forecast of the same rows."""
    task = metrics.task
    scored = {
        name: evaluate_predictions(y_true, pred, task)
        for name, pred in baselines.predictions(weekdays).items()
    }
    skills = []
    for metric in SKILL_METRICS[task]:
        errors = {name: m[metric] for name, m in scored.items()}
        best = min(errors, key=errors.__getitem__)
        bar = errors[best]
        skill = 1.0 - metrics[metric] / bar if bar > 0 else math.nan
        skills.append(Skill(metric, metrics[metric], errors, best, skill))
    return BaselineReport(task, tuple(skills), GATED_SKILL[task])
