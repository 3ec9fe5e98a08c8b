"""Quality gates on a candidate model: blocking ones decide promotion, warnings are reported.

Each gate is data (name, passed, blocking, observed, expected, detail) so the same result becomes
a Dagster asset check, a row in the audit table and a line in the model card.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ml_assets.core.metrics import GapKind, check_metric, higher_is_better, slice_gap_rule
from ml_assets.core.spec import EvaluationSection
from ml_assets.layers.evaluate.baseline import BaselineReport
from ml_assets.layers.evaluate.compare import Comparison
from ml_assets.layers.evaluate.metrics import Metrics
from ml_assets.layers.evaluate.slices import GAP_DRAWS, GAP_QUANTILE, SliceMetric, SliceReport

SMALL_SLICES_LISTED = 10
# `max_slice_gap` when the spec leaves it out. An AUC 0.15 below overall is a model that lost
# about half its skill there (0.80 -> 0.65); errors differ between segments by their own label
# noise even where the model is no worse, so a relative bound needs more room: 25% worse.
DEFAULT_MAX_SLICE_GAP: dict[GapKind, float] = {"absolute": 0.15, "relative": 0.25}


@dataclass(frozen=True)
class GateSpec:
    name: str
    blocking: bool
    description: str


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    blocking: bool  # a failed blocking gate stops promotion; otherwise it is a warning
    observed: float | int | None  # the measured value (None when not applicable)
    expected: str  # the bound, readable, e.g. ">= 0.65"
    detail: str

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        if isinstance(self.observed, float) and not math.isfinite(self.observed):
            out["observed"] = None
        return out


@dataclass(frozen=True)
class Verdict:
    promote: bool
    failed_blocking: tuple[str, ...]
    warnings: tuple[str, ...]  # failed non-blocking gates
    reason: str


def max_slice_gap(evaluation: EvaluationSection) -> float:
    """The spec's bound on the worst slice's gap, or the default of the metric's gap kind."""
    if evaluation.max_slice_gap is not None:
        return evaluation.max_slice_gap
    return DEFAULT_MAX_SLICE_GAP[slice_gap_rule(evaluation.metric)[1]]


def _gap_words(metric: str) -> str:
    judged, kind = slice_gap_rule(metric)
    if kind == "absolute":
        return f"overall {metric} minus the worst slice's (absolute)"
    via = f"{metric} slices judged by {judged}: " if judged != metric else ""
    return f"{via}(worst slice's {judged} - overall) / overall {judged} (relative)"


def gate_specs(evaluation: EvaluationSection) -> list[GateSpec]:
    """The gates in the order `gate_results` returns them, for declaring asset checks up front."""
    e = evaluation
    return [
        GateSpec("metric_floor", True, f"Primary metric {e.metric} reaches the floor {e.floor}."),
        GateSpec(
            "non_inferiority",
            True,
            f"{e.metric} no worse than the champion's by more than {e.non_inferiority_tolerance} "
            "(passes when there is no champion yet).",
        ),
        GateSpec(
            "slice_gap",
            True,
            f"Slice gap, {_gap_words(e.metric)}, over slices of >= {e.min_slice_rows} rows: no "
            f"slice's gap exceeds {max_slice_gap(e)} beyond its bootstrap noise.",
        ),
        GateSpec(
            "leakage_guard",
            True,
            f"No implausibly good score (ROC AUC / R² / primary metric above {e.leakage_ceiling}), "
            "which usually means a feature leaks the label.",
        ),
        GateSpec(
            "baseline_skill",
            True,
            "Beats the best naive baseline on the holdout: skill = 1 - error / baseline error "
            "> 0 on log loss (binary; baseline: the training label rate) or RMSE (regression; "
            "baselines: the training mean and the training mean per weekday).",
        ),
        GateSpec(
            "calibration",
            False,
            f"Expected calibration error (10 equal-width bins) of the served (calibrated) scores "
            f"at most {e.max_calibration_error}.",
        ),
    ]


def _floor(metrics: Metrics, e: EvaluationSection) -> GateResult:
    value = metrics[e.metric]
    up = higher_is_better(e.metric)
    ok = not math.isnan(value) and (value >= e.floor if up else value <= e.floor)
    sign = ">=" if up else "<="
    why = "; ".join(metrics.flags) if math.isnan(value) else f"{e.metric} = {value:.4f}"
    return GateResult("metric_floor", ok, True, value, f"{sign} {e.floor}", why)


def _non_inferiority(c: Comparison, e: EvaluationSection) -> GateResult:
    if c.champion is None:
        expected = "no champion: passes"
    else:
        bound = c.champion - c.tolerance if c.higher_is_better else c.champion + c.tolerance
        expected = f"{'>=' if c.higher_is_better else '<='} {bound:.4f}"
    return GateResult("non_inferiority", c.non_inferior, True, c.delta, expected, c.detail)


def _slice_words(x: SliceMetric, s: SliceReport) -> str:
    """A slice with its rows, its gap, and the allowance its bootstrap granted."""
    judged = s.judged_by
    value = x.metric if x.judged is None else x.judged
    also = "" if x.judged is None else f", {s.metric} {x.metric:.4f}"
    allowance = (
        f"allowance {x.allowance:.4f} -> lower bound {x.gap_low:.4f}"
        if x.allowance is not None and x.gap_low is not None
        else "allowance 0 (not worse than overall)"
    )
    return (
        f"{x.column}={x.value} ({x.rows} rows): {judged} {value:.4f}{also}, {s.gap_kind} gap "
        f"{x.gap:.4f}, {allowance}"
    )


def _slice_gap(s: SliceReport, e: EvaluationSection) -> GateResult:
    """Blocking unless every eligible slice's gap is within the bound once its noise is allowed.

    A slice counts as worse only when its gap's bootstrap lower bound (the GAP_QUANTILE of the gap
    over GAP_DRAWS resamples of its rows) exceeds the bound: a few hundred rows can be well off
    the overall value by chance, and rejecting a model for that is noise, not a finding.
    Observed is the largest such lower bound; the worst slice by point gap is named with it.
    """
    bound = max_slice_gap(e)
    judged, kind = s.judged_by, s.gap_kind
    expected = f"<= {bound} ({kind})"
    if not s.slices:
        return GateResult("slice_gap", True, True, None, expected, "no slice columns")
    if s.worst is None:
        if math.isnan(s.overall):
            return GateResult(
                "slice_gap", False, True, None, expected, f"overall {s.metric} is undefined"
            )
        return GateResult(
            "slice_gap", True, True, None, expected, f"no slice with >= {s.min_rows} rows"
        )
    judged_overall = s.overall if s.judged_overall is None else s.judged_overall
    lows = [
        (x.gap_low if x.gap_low is not None else x.gap, x)
        for x in s.slices
        if x.eligible and x.gap is not None
    ]
    low, decisive = max(lows, key=lambda pair: pair[0])
    ok = low <= bound
    parts = []
    if judged != s.metric:
        parts.append(
            f"{s.metric} slices judged by {judged} relative to the overall {judged} (a slice's "
            f"own {s.metric} is measured against its own mean, so a slice column that explains "
            "the label would lower it where the model is no worse)"
        )
    parts.append(f"overall {judged} {judged_overall:.4f}")
    parts.append("worst slice " + _slice_words(s.worst, s))
    if decisive != s.worst:
        parts.append("highest lower bound " + _slice_words(decisive, s))
    parts.append(
        f"a slice fails when its gap's {GAP_QUANTILE:.0%} bootstrap quantile ({GAP_DRAWS} draws "
        f"of its rows) exceeds {bound}"
    )
    if s.small:
        parts.append(_excluded(s))
    return GateResult("slice_gap", ok, True, low, expected, "; ".join(parts))


def _leakage(metrics: Metrics, e: EvaluationSection) -> GateResult:
    watched = ["roc_auc"] if metrics.task == "binary" else ["r2"]
    if higher_is_better(e.metric) and e.metric not in watched:
        watched.append(e.metric)
    values = {m: metrics[m] for m in watched if not math.isnan(metrics[m])}
    expected = f"<= {e.leakage_ceiling}"
    if not values:
        return GateResult("leakage_guard", True, True, None, expected, "no defined metric to watch")
    name, top = max(values.items(), key=lambda kv: kv[1])
    ok = top <= e.leakage_ceiling
    detail = ", ".join(f"{m} = {v:.4f}" for m, v in values.items())
    if not ok:
        detail += f": {name} is implausibly high; look for a feature that encodes the label"
    return GateResult("leakage_guard", ok, True, top, expected, detail)


def _baseline(b: BaselineReport) -> GateResult:
    """Blocking unless the candidate beats the best naive baseline on the gated metric.

    Strictly above 0: a model exactly as good as the training mean adds nothing to serve. An
    undefined skill (a baseline with zero error: a constant holdout it predicts exactly) fails.
    """
    gated = b.gate_skill
    ok = gated.skill == gated.skill and gated.skill > 0
    parts = [
        f"{s.name} {s.skill:.4f} ({s.metric} {s.model:.4f} vs "
        + ", ".join(f"{n} {v:.4f}" for n, v in s.baselines.items())
        + f"; best {s.best})"
        for s in b.skills
    ]
    detail = "; ".join(parts)
    if not ok:
        detail += f": no better than predicting {gated.best} on {gated.metric}"
    return GateResult("baseline_skill", ok, True, gated.skill, "> 0", detail)


@dataclass(frozen=True)
class CalibrationContext:
    """What a failed calibration gate needs to say why: the label rate of the validation days
    the calibrator was fitted on, and the holdout's mean served score."""

    method: str = "none"
    fitted_label_rate: float | None = None
    mean_score: float | None = None


def _calibration(metrics: Metrics, e: EvaluationSection, c: CalibrationContext) -> GateResult:
    expected = f"<= {e.max_calibration_error}"
    if metrics.task != "binary":
        return GateResult(
            "calibration", True, False, None, expected, "not applicable to regression"
        )
    ece = metrics["ece"]
    ok = ece <= e.max_calibration_error
    detail = f"ECE = {ece:.4f} of the served scores (calibration: {c.method})"
    if not ok and c.fitted_label_rate is not None and c.mean_score is not None:
        # ECE >= |mean score - label rate| (calibration in the large): that part is a shift of
        # the base rate after the calibration window, which no calibrator fitted before the
        # holdout can remove; only recalibrating on later labels (a retrain) does.
        offset = abs(c.mean_score - metrics.label_mean)
        detail += (
            f"; why: the holdout's label rate is {metrics.label_mean:.3f}, the validation days "
            f"the calibrator was fitted on had {c.fitted_label_rate:.3f}, and the mean served "
            f"score is {c.mean_score:.3f}, so {offset:.3f} of the ECE is that shift of base rate"
        )
    return GateResult("calibration", ok, False, ece, expected, detail)


def _excluded(s: SliceReport) -> str:
    """The slices too small to judge, named: a fact about the data (flights has carriers with a
    handful of flights in every window), so it is reported, not raised as a warning on every run."""
    small = s.small
    listed = ", ".join(f"{x.column}={x.value} ({x.rows})" for x in small[:SMALL_SLICES_LISTED])
    more = (
        f" and {len(small) - SMALL_SLICES_LISTED} more" if len(small) > SMALL_SLICES_LISTED else ""
    )
    return f"{len(small)} slice(s) under {s.min_rows} rows not judged: {listed}{more}"


def gate_results(
    metrics: Metrics,
    comparison: Comparison,
    slices: SliceReport,
    baselines: BaselineReport,
    evaluation: EvaluationSection,
    calibration: CalibrationContext | None = None,
) -> list[GateResult]:
    """All gates, in `gate_specs` order. Blocking: floor, non-inferiority, slice gap, leakage,
    baseline skill. `calibration` names the calibrator behind the scores (for the detail)."""
    check_metric(evaluation.metric, metrics.task)
    e = evaluation
    return [
        _floor(metrics, e),
        _non_inferiority(comparison, e),
        _slice_gap(slices, e),
        _leakage(metrics, e),
        _baseline(baselines),
        _calibration(metrics, e, calibration or CalibrationContext()),
    ]


def verdict(gates: Sequence[GateResult]) -> Verdict:
    """Promote exactly when every blocking gate passed; an empty gate list is an error."""
    if not any(g.blocking for g in gates):
        raise ValueError("no blocking gate results: refusing to decide on nothing")
    failed = tuple(g.name for g in gates if g.blocking and not g.passed)
    warnings = tuple(g.name for g in gates if not g.blocking and not g.passed)
    if failed:
        reason = "failed blocking gates: " + "; ".join(
            f"{g.name} ({g.detail})" for g in gates if g.name in failed
        )
    else:
        reason = "all blocking gates passed"
        if warnings:
            reason += f" (warnings: {', '.join(warnings)})"
    return Verdict(promote=not failed, failed_blocking=failed, warnings=warnings, reason=reason)
