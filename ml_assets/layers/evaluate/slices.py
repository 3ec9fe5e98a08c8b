"""The primary metric per slice (e.g. per carrier, origin, month) and the worst-slice gap.

An overall AUC can hide a segment the model serves badly; the gap between the overall metric and
the worst slice's is a blocking gate. The gap fits the metric (`core/metrics.py`): absolute for
bounded scores (AUC 0.80 overall, 0.70 on the slice: 0.10), relative for errors (RMSE 12 overall,
15 on the slice: 0.25), and R² slices are judged by their RMSE. Slices with too few rows are
reported but kept out of the gap, and an eligible slice's gap comes with a bootstrap lower bound,
so a slice that is worse only by the noise of its few rows cannot reject a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from ml_assets.core.metrics import (
    EvaluationError,
    GapKind,
    check_metric,
    higher_is_better,
    slice_gap_rule,
)
from ml_assets.layers.evaluate.metrics import CALIBRATION_BINS, evaluate_predictions

NULL_VALUE = "NULL"
# Bootstrap of a slice's gap: rows resampled within the slice, the overall value held fixed (it
# rests on every row). 200 seeded draws put the 5% quantile within about 0.15 standard errors;
# on 12k rows and 30 slices it adds 0.2-0.35 s (worse slices only; test_slice_gaps.py bounds it).
GAP_DRAWS = 200
GAP_QUANTILE = 0.05  # the slice fails only if 95% of its resamples still exceed the bound
GAP_SEED = 0

Value = TypeVar("Value", float, np.ndarray)


@dataclass(frozen=True)
class SliceMetric:
    column: str
    value: str  # the slice value as text; NULL for missing
    rows: int
    label_mean: float  # share of positives (binary) or mean label (regression)
    positives: int | None  # binary only
    metric: float  # the primary metric on this slice; NaN when undefined
    eligible: bool  # counted in the worst-slice gap
    note: str = ""  # why not eligible, e.g. "small: 150 < 200 rows"
    judged: float | None = None  # the metric the gap judges, when not the primary (r2: RMSE)
    gap: float | None = None  # how much worse than overall, in the gap's kind; None if undefined
    # The gap's bootstrap lower bound (GAP_QUANTILE of the resampled gaps), for eligible slices
    # worse than overall; None for the others, which cannot fail the gate.
    gap_low: float | None = None

    @property
    def allowance(self) -> float | None:
        """The bootstrap noise granted to the gap: gap minus its lower bound."""
        return None if self.gap is None or self.gap_low is None else self.gap - self.gap_low


@dataclass(frozen=True)
class SliceReport:
    metric: str
    overall: float
    min_rows: int
    slices: tuple[SliceMetric, ...]
    worst: SliceMetric | None  # the eligible slice with the largest gap
    gap: float  # the worst slice's gap (bigger = worse, for every metric); NaN if none eligible
    judged_overall: float | None = None  # overall value of `judged_by` (r2: the overall RMSE)

    @property
    def judged_by(self) -> str:
        """The metric slices are compared on: the primary one, or RMSE for r2."""
        return slice_gap_rule(self.metric)[0]

    @property
    def gap_kind(self) -> GapKind:
        return slice_gap_rule(self.metric)[1]

    @property
    def small(self) -> tuple[SliceMetric, ...]:
        return tuple(s for s in self.slices if s.rows < self.min_rows)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.column for s in self.slices))

    def records(self) -> list[dict[str, object]]:
        """One JSON-ready dict per slice (NaN as None), for metadata and the model card."""
        judged = {} if self.judged_by == self.metric else {self.judged_by: "judged"}
        return [
            {
                "column": s.column,
                "value": s.value,
                "rows": s.rows,
                "label_mean": round(s.label_mean, 6),
                "positives": s.positives,
                self.metric: _round(s.metric),
                **{name: _round(s.judged) for name in judged},
                "gap": _round(s.gap),
                "gap_low": _round(s.gap_low),
                "eligible": s.eligible,
                "note": s.note,
            }
            for s in self.slices
        ]


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return NULL_VALUE
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def gap_to(overall: float, worst: Value, metric: str) -> Value:
    """How much worse `worst` is than `overall`, positive when worse, in the metric's gap kind.

    Relative gaps divide by the overall error; against a perfect overall (0) any error is
    infinitely worse and none is no worse. `worst` may be an array (the bootstrap draws).
    """
    if slice_gap_rule(metric)[1] == "absolute":
        return overall - worst if higher_is_better(metric) else worst - overall
    if overall == 0:
        return np.where(np.asarray(worst) > 0, math.inf, 0.0)
    return (worst - overall) / overall


def _grouped(w: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight per distinct score, scores descending: (draws, groups)."""
    order = np.argsort(-s, kind="stable")
    ss = s[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    wo, to = w[:, order], t[order]
    return np.add.reduceat(wo * to, starts, axis=1), np.add.reduceat(wo * (1 - to), starts, axis=1)


def weighted_metric(
    metric: str, t: np.ndarray, s: np.ndarray, w: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """`metric` of rows `t`, `s` under each row of weights `w` (draws x rows): one value per draw.

    Integer weights are bootstrap counts, so row k is the metric of the resample with row i taken
    w[k, i] times (ties and all, as sklearn counts them); undefined values are NaN. One matrix
    product per draw set instead of a metric call per draw keeps the bootstrap cheap.
    """
    n = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric in ("rmse", "mae", "r2"):
            err = s - t
            if metric == "rmse":
                return np.sqrt(w @ err**2 / n)
            if metric == "mae":
                return w @ np.abs(err) / n
            ss_tot = w @ t**2 - (w @ t) ** 2 / n
            return np.where(ss_tot > 0, 1 - (w @ err**2) / ss_tot, np.nan)
        if metric == "brier":
            return w @ (s - t) ** 2 / n
        if metric == "log_loss":
            eps = np.finfo(float).eps  # sklearn's clipping
            p = np.clip(s, eps, 1 - eps)
            return w @ -(t * np.log(p) + (1 - t) * np.log(1 - p)) / n
        if metric == "ece":
            index = np.digitize(s, np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)[1:-1])
            onehot = np.eye(CALIBRATION_BINS)[index]  # rows x bins
            return np.abs(w @ ((t - s)[:, None] * onehot)).sum(axis=1) / n
        if metric in ("f1", "precision", "recall", "f1_at_0.5"):
            pred = s >= (0.5 if metric == "f1_at_0.5" else threshold)
            tp, fp, fn = (w @ (pred & (t == 1)), w @ (pred & (t == 0)), w @ (~pred & (t == 1)))
            if metric == "precision":
                return tp / (tp + fp)
            return tp / (tp + fn) if metric == "recall" else 2 * tp / (2 * tp + fp + fn)
        if metric not in ("roc_auc", "pr_auc"):
            raise EvaluationError(f"no weighted form of metric {metric!r}")
        pos, neg = _grouped(w, s, t)
        p_tot, n_tot = pos.sum(axis=1), neg.sum(axis=1)
        defined = (p_tot > 0) & (n_tot > 0)
        if metric == "roc_auc":  # a positive beats the negatives scored lower, half the tied ones
            below = n_tot[:, None] - np.cumsum(neg, axis=1) + 0.5 * neg
            return np.where(defined, (pos * below).sum(axis=1) / (p_tot * n_tot), np.nan)
        # pr_auc, average precision: the precision at each threshold times its step in recall
        tps, fps = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
        precision = np.divide(tps, tps + fps, out=np.zeros_like(tps), where=tps + fps > 0)
        return np.where(defined, (pos * precision).sum(axis=1) / p_tot, np.nan)


def gap_lower_bound(
    metric: str,
    t: np.ndarray,
    s: np.ndarray,
    overall: float,
    rng: np.random.Generator,
    threshold: float = 0.5,
) -> float:
    """The GAP_QUANTILE of the slice's gap over GAP_DRAWS resamples of its rows.

    A resample on which the metric is undefined (one class drawn) counts as no gap: it is no
    evidence that the slice is worse.
    """
    n = t.size
    draws = rng.integers(0, n, size=(GAP_DRAWS, n)) + n * np.arange(GAP_DRAWS)[:, None]
    counts = np.bincount(draws.ravel(), minlength=GAP_DRAWS * n).reshape(GAP_DRAWS, n)
    gaps = gap_to(overall, weighted_metric(metric, t, s, counts.astype(float), threshold), metric)
    return float(np.quantile(np.nan_to_num(gaps, nan=0.0), GAP_QUANTILE))


def slice_metrics(
    frame: pd.DataFrame,
    slice_columns: Sequence[str],
    y_true: object,
    y_score: object,
    task: str,
    primary_metric: str,
    min_rows: int,
    threshold: float = 0.5,
) -> SliceReport:
    """Per slice column and value: rows, label mean, primary metric and gap; plus the worst gap.

    `frame` holds the slice columns, row-aligned with `y_true` and `y_score`. A slice is eligible
    for the gap when it has at least `min_rows` rows and its metric is defined; eligible slices
    worse than overall get a bootstrap lower bound of their gap (`gap_low`).
    """
    check_metric(primary_metric, task)
    if min_rows < 1:
        raise EvaluationError(f"min_rows must be at least 1, got {min_rows}")
    t = np.asarray(y_true, dtype=float).reshape(-1)
    s = np.asarray(y_score, dtype=float).reshape(-1)
    if len(frame) != t.size or t.size != s.size:
        raise EvaluationError(f"{len(frame)} frame rows, {t.size} labels, {s.size} scores")
    missing = [c for c in slice_columns if c not in frame.columns]
    if missing:
        raise EvaluationError(f"slice columns {missing} are not in the frame")
    judged_by = slice_gap_rule(primary_metric)[0]
    whole = evaluate_predictions(t, s, task, threshold)
    overall, reference = whole[primary_metric], whole[judged_by]
    rng = np.random.default_rng(GAP_SEED)
    out: list[SliceMetric] = []
    for column in slice_columns:
        codes, uniques = pd.factorize(frame[column], sort=True, use_na_sentinel=True)
        for code in sorted(set(codes.tolist())):
            mask = codes == code
            value = NULL_VALUE if code == -1 else _text(uniques[code])
            m = evaluate_predictions(t[mask], s[mask], task, threshold)
            rows = int(mask.sum())
            value_metric, judged = m[primary_metric], m[judged_by]
            if rows < min_rows:
                note = f"small: {rows} < {min_rows} rows"
            elif math.isnan(value_metric) or math.isnan(judged):
                note = "; ".join(m.flags) or "metric undefined"
            else:
                note = ""
            raw_gap = float(gap_to(reference, judged, judged_by))
            gap = None if math.isnan(raw_gap) else raw_gap
            low = None
            if not note and gap is not None and gap > 0:  # only a worse slice can fail the gate
                low = gap_lower_bound(judged_by, t[mask], s[mask], reference, rng, threshold)
            out.append(
                SliceMetric(
                    column=column,
                    value=value,
                    rows=rows,
                    label_mean=m.label_mean,
                    positives=int(t[mask].sum()) if task == "binary" else None,
                    metric=value_metric,
                    eligible=not note,
                    note=note,
                    judged=None if judged_by == primary_metric else judged,
                    gap=gap,
                    gap_low=low,
                )
            )
    gaps = {i: x.gap for i, x in enumerate(out) if x.eligible and x.gap is not None}
    worst = out[max(gaps, key=gaps.__getitem__)] if gaps else None
    return SliceReport(
        metric=primary_metric,
        overall=overall,
        min_rows=min_rows,
        slices=tuple(out),
        worst=worst,
        gap=gaps[out.index(worst)] if worst else math.nan,
        judged_overall=reference,
    )
