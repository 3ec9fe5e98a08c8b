"""One call from scored held-out rows to everything the evaluation asset and its checks report.

The asset does the I/O (load the candidate and champion, read the test rows, score them) and
passes plain arrays here; the result is one bundle, so the promotion step downstream gets the
gates as an input instead of recomputing or re-reading them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.core.jsonable import json_ready
from ml_assets.core.metrics import check_metric
from ml_assets.core.spec import EvaluationSection
from ml_assets.layers.evaluate.baseline import BaselineReport, NaiveBaselines, baseline_skill
from ml_assets.layers.evaluate.compare import Comparison, compare
from ml_assets.layers.evaluate.gates import (
    CalibrationContext,
    GateResult,
    Verdict,
    gate_results,
    verdict,
)
from ml_assets.layers.evaluate.metrics import Metrics, evaluate_predictions
from ml_assets.layers.evaluate.plots import render_plots
from ml_assets.layers.evaluate.record import EvaluationRecord
from ml_assets.layers.evaluate.report import render_report
from ml_assets.layers.evaluate.slices import SliceReport, slice_metrics


@dataclass(frozen=True)
class Evaluation:
    metrics: Metrics
    champion_version: str | None
    champion_metrics: Metrics | None  # the champion scored on the same rows
    comparison: Comparison
    slices: SliceReport
    importance: dict[str, float]
    gates: list[GateResult]
    verdict: Verdict
    plots: dict[str, Path]  # title -> PNG
    report: Path | None  # report.md beside the PNGs
    baselines: BaselineReport
    holdout: tuple[str, str] = ("", "")  # first and last day of the evaluated rows
    # The worst trailing-window metric expected by chance (evaluate/variability.py); NaN if unknown.
    expected_trailing: float = float("nan")
    calibration: str = "none"  # the calibrator of the evaluated version (none: raw scores)

    def record(self) -> EvaluationRecord:
        """What outlives the run (for the model card of a later rollback), as JSON-ready data."""
        return EvaluationRecord(
            self.metrics,
            self.slices,
            self.importance,
            self.gates,
            self.holdout,
            self.expected_trailing,
            self.baselines,
            self.calibration,
        )

    def audit_metrics(self) -> dict[str, object]:
        """Holdout metrics, skill scores and the decision threshold, for the audit row."""
        return json_ready(
            {
                **self.metrics.values,
                **self.baselines.values(),
                **({} if self.metrics.threshold is None else {"threshold": self.metrics.threshold}),
            }
        )

    def gate(self, name: str) -> GateResult:
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(f"no gate {name!r}; have {[g.name for g in self.gates]}")


def evaluate_candidate(
    evaluation: EvaluationSection,
    task: str,
    frame: pd.DataFrame,
    y_true: np.ndarray,
    y_score: np.ndarray,
    slice_columns: Sequence[str],
    importance: Mapping[str, float],
    *,
    baselines: NaiveBaselines,
    weekdays: np.ndarray,
    threshold: float | None = None,
    calibration: str = "none",
    calibrated_label_rate: float | None = None,
    champion_scores: np.ndarray | None = None,
    champion_version: str | None = None,
    champion_threshold: float | None = None,
    folder: Path | None = None,
    title: str = "Model evaluation",
    holdout: tuple[str, str] = ("", ""),
    expected_trailing: float = float("nan"),
) -> Evaluation:
    """Metrics, naive-baseline skill, champion comparison, slices, gates and (if `folder`) plots
    + report.

    `frame` holds the evaluated rows' slice columns, aligned with `y_true`, `y_score`,
    `weekdays` (ISO weekday of each row's event time, for the seasonal baseline) and, when there
    is a champion, `champion_scores` (the champion's predictions on the same rows, so the
    comparison is like for like). A binary candidate needs its `threshold`, the one stored with
    its version; the champion is judged at its own (`champion_threshold`). `importance` comes
    from `explain.global_importance`; `baselines` are fitted on the train split;
    `calibrated_label_rate` is the label rate of the validation days the calibrator was fitted on
    (a failed calibration gate compares it with the holdout's).
    """
    check_metric(evaluation.metric, task)
    if (champion_scores is None) != (champion_version is None):
        raise ValueError("give both champion_scores and champion_version, or neither")
    if task == "binary" and threshold is None:
        raise ValueError("a binary evaluation needs the version's decision threshold")
    cut = 0.5 if threshold is None else threshold  # regression: unused
    metrics = evaluate_predictions(y_true, y_score, task, cut)
    champion = (
        None
        if champion_scores is None
        else evaluate_predictions(
            y_true, champion_scores, task, cut if champion_threshold is None else champion_threshold
        )
    )
    skill = baseline_skill(metrics, baselines, np.asarray(y_true, dtype=float), weekdays)
    comparison = compare(metrics, champion, evaluation.metric, evaluation.non_inferiority_tolerance)
    slices = slice_metrics(
        frame,
        slice_columns,
        y_true,
        y_score,
        task,
        evaluation.metric,
        evaluation.min_slice_rows,
        cut,
    )
    context = CalibrationContext(
        calibration,
        fitted_label_rate=calibrated_label_rate,
        mean_score=float(np.mean(y_score)) if len(y_score) else None,
    )
    gates = gate_results(metrics, comparison, slices, skill, evaluation, context)
    plots: dict[str, Path] = {}
    report = None
    if folder is not None:
        plots = render_plots(folder / "plots", y_true, y_score, task, importance, slices)
        report = render_report(
            folder, title, metrics, comparison, slices, importance, gates, plots, skill
        )
    return Evaluation(
        metrics=metrics,
        champion_version=champion_version,
        champion_metrics=champion,
        comparison=comparison,
        slices=slices,
        importance=importance,
        gates=gates,
        verdict=verdict(gates),
        plots=plots,
        report=report,
        baselines=skill,
        holdout=holdout,
        expected_trailing=expected_trailing,
        calibration=calibration,
    )
