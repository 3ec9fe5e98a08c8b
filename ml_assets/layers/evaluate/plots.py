"""Evaluation plots as small PNG files: ROC, reliability, importance and per-slice bars.

Figures are built with matplotlib's object API (`Figure`, saved through the Agg canvas), never
`pyplot`: no global backend or figure state, so plotting is safe inside any Dagster step. The
PNGs are small (5 x 3.5 in at 80 dpi) because they are also inlined into Dagster metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from ml_assets.core.metrics import higher_is_better
from ml_assets.layers.evaluate.metrics import calibration_bins
from ml_assets.layers.evaluate.slices import SliceReport

SIZE = (5.0, 3.5)
DPI = 80
TOP_FEATURES = 15
SCATTER_POINTS = 2_000


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    return path


def plot_roc(y_true: np.ndarray, y_score: np.ndarray, path: Path) -> Path:
    fpr, tpr, _ = roc_curve(y_true, y_score)
    fig = Figure(figsize=SIZE)
    ax = fig.subplots()
    ax.plot(fpr, tpr, lw=1.5, label="model")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_calibration(y_true: np.ndarray, y_score: np.ndarray, path: Path) -> Path:
    bins = [
        b for b in calibration_bins(np.asarray(y_true, float), np.asarray(y_score, float)) if b.rows
    ]
    fig = Figure(figsize=SIZE)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfectly calibrated")
    ax.plot([b.mean_score for b in bins], [b.positive_rate for b in bins], "o-", label="model")
    ax.set(
        xlabel="mean predicted probability (10 bins)",
        ylabel="observed positive rate",
        title="Reliability",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    counts = ax.twinx()
    counts.bar(
        [(b.lower + b.upper) / 2 for b in bins], [b.rows for b in bins], width=0.08, alpha=0.15
    )
    counts.set_ylabel("rows", fontsize=8)
    ax.set_zorder(counts.get_zorder() + 1)  # the curve over the row-count bars
    ax.patch.set_visible(False)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_predicted_vs_actual(y_true: np.ndarray, y_score: np.ndarray, path: Path) -> Path:
    t, s = np.asarray(y_true, float), np.asarray(y_score, float)
    if t.size > SCATTER_POINTS:
        keep = np.random.default_rng(0).choice(t.size, SCATTER_POINTS, replace=False)
        t, s = t[keep], s[keep]
    lo, hi = float(min(t.min(), s.min())), float(max(t.max(), s.max()))
    fig = Figure(figsize=SIZE)
    ax = fig.subplots()
    ax.scatter(t, s, s=4, alpha=0.4)
    ax.plot([lo, hi], [lo, hi], ls="--", c="grey", lw=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    return _save(fig, path)


def plot_importance(importance: Mapping[str, float], path: Path, top: int = TOP_FEATURES) -> Path:
    items = list(importance.items())[:top][::-1]
    fig = Figure(figsize=(SIZE[0], max(SIZE[1], 0.22 * len(items) + 0.8)))
    ax = fig.subplots()
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(title=f"Top {len(items)} features", xlabel="importance")
    ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def plot_slices(report: SliceReport, column: str, path: Path) -> Path:
    """One bar per value of `column`; small or undefined slices are grey, the worst is red."""
    rows = [s for s in report.slices if s.column == column]
    if not rows:
        raise ValueError(f"no slices for column {column!r}")
    fig = Figure(figsize=(SIZE[0], max(SIZE[1], 0.2 * len(rows) + 0.8)))
    ax = fig.subplots()
    values = [0.0 if math.isnan(s.metric) else s.metric for s in rows]
    colors = [
        "tab:red" if s == report.worst else ("lightgrey" if not s.eligible else "tab:blue")
        for s in rows
    ]
    ax.barh([f"{s.value} ({s.rows})" for s in rows][::-1], values[::-1], color=colors[::-1])
    finite = [v for s, v in zip(rows, values, strict=True) if not math.isnan(s.metric)]
    if finite:  # zoom on the spread between slices, which is what the gate is about
        lo, hi = min([*finite, report.overall]), max([*finite, report.overall])
        pad = max(0.05 * (hi - lo), 0.02 * abs(hi), 1e-6)
        left = lo - 4 * pad
        ax.set_xlim(max(left, 0.0) if lo >= 0 else left, hi + pad)
    ax.axvline(report.overall, c="black", ls="--", lw=1, label=f"overall {report.overall:.3f}")
    direction = "higher is better" if higher_is_better(report.metric) else "lower is better"
    ax.set(title=f"{report.metric} by {column}", xlabel=f"{report.metric} ({direction})")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def render_plots(
    folder: Path,
    y_true: np.ndarray,
    y_score: np.ndarray,
    task: str,
    importance: Mapping[str, float] | None = None,
    slices: SliceReport | None = None,
) -> dict[str, Path]:
    """Every plot for one evaluation into `folder`; returns title -> PNG path, in report order."""
    folder = Path(folder)
    out: dict[str, Path] = {}
    if task == "binary":
        if np.unique(np.asarray(y_true)).size == 2:  # a ROC curve needs both classes
            out["ROC curve"] = plot_roc(y_true, y_score, folder / "roc.png")
        out["Reliability"] = plot_calibration(y_true, y_score, folder / "calibration.png")
    else:
        out["Predicted vs actual"] = plot_predicted_vs_actual(
            y_true, y_score, folder / "predicted_vs_actual.png"
        )
    if importance:
        out["Feature importance"] = plot_importance(importance, folder / "importance.png")
    if slices is not None:
        for column in slices.columns:
            out[f"{slices.metric} by {column}"] = plot_slices(
                slices, column, folder / f"slices_{column}.png"
            )
    return out
