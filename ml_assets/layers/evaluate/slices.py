"""The primary metric per slice (e.g. per carrier, origin, month) and the worst-slice gap.

An overall AUC can hide a segment the model serves badly; the gap between the overall metric and
the worst slice's is a blocking gate. Slices with too few rows are reported but kept out of the
gap, since their metric is mostly noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_assets.core.metrics import EvaluationError, check_metric, higher_is_better
from ml_assets.layers.evaluate.metrics import evaluate_predictions

NULL_VALUE = "NULL"


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


@dataclass(frozen=True)
class SliceReport:
    metric: str
    overall: float
    min_rows: int
    slices: tuple[SliceMetric, ...]
    worst: SliceMetric | None  # the worst eligible slice
    gap: float  # overall minus worst (bigger = worse, for every metric); NaN if none eligible

    @property
    def small(self) -> tuple[SliceMetric, ...]:
        return tuple(s for s in self.slices if s.rows < self.min_rows)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.column for s in self.slices))

    def records(self) -> list[dict[str, object]]:
        """One JSON-ready dict per slice (NaN as None), for metadata and the model card."""
        return [
            {
                "column": s.column,
                "value": s.value,
                "rows": s.rows,
                "label_mean": round(s.label_mean, 6),
                "positives": s.positives,
                self.metric: None if math.isnan(s.metric) else round(s.metric, 6),
                "eligible": s.eligible,
                "note": s.note,
            }
            for s in self.slices
        ]


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return NULL_VALUE
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def gap_to(overall: float, worst: float, metric: str) -> float:
    """How much worse `worst` is than `overall`, positive when worse, for either direction."""
    return overall - worst if higher_is_better(metric) else worst - overall


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
    """Per slice column and value: rows, label mean and primary metric; plus the worst gap.

    `frame` holds the slice columns, row-aligned with `y_true` and `y_score`. A slice is eligible
    for the gap when it has at least `min_rows` rows and its metric is defined.
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
    overall = evaluate_predictions(t, s, task, threshold)[primary_metric]
    out: list[SliceMetric] = []
    for column in slice_columns:
        codes, uniques = pd.factorize(frame[column], sort=True, use_na_sentinel=True)
        for code in sorted(set(codes.tolist())):
            mask = codes == code
            value = NULL_VALUE if code == -1 else _text(uniques[code])
            m = evaluate_predictions(t[mask], s[mask], task, threshold)
            rows = int(mask.sum())
            value_metric = m[primary_metric]
            if rows < min_rows:
                note = f"small: {rows} < {min_rows} rows"
            elif math.isnan(value_metric):
                note = "; ".join(m.flags) or "metric undefined"
            else:
                note = ""
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
                )
            )
    eligible = [x for x in out if x.eligible]
    worst = None
    if eligible:
        pick = min if higher_is_better(primary_metric) else max
        worst = pick(eligible, key=lambda x: x.metric)
    return SliceReport(
        metric=primary_metric,
        overall=overall,
        min_rows=min_rows,
        slices=tuple(out),
        worst=worst,
        gap=gap_to(overall, worst.metric, primary_metric) if worst else math.nan,
    )
