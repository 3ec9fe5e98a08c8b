"""Quality gates on a candidate model: blocking ones decide promotion, warnings are reported.

Each gate is data (name, passed, blocking, observed, expected, detail) so the same result becomes
a Dagster asset check, a row in the audit table and a line in the model card.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ml_assets.core.metrics import check_metric, higher_is_better
from ml_assets.core.spec import EvaluationSection
from ml_assets.layers.evaluate.compare import Comparison
from ml_assets.layers.evaluate.metrics import Metrics
from ml_assets.layers.evaluate.slices import SliceReport

SMALL_SLICES_LISTED = 10


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
            f"Overall {e.metric} minus the worst slice's (slices of >= {e.min_slice_rows} rows) "
            f"is at most {e.max_slice_gap}.",
        ),
        GateSpec(
            "leakage_guard",
            True,
            f"No implausibly good score (ROC AUC / R² / primary metric above {e.leakage_ceiling}), "
            "which usually means a feature leaks the label.",
        ),
        GateSpec(
            "calibration",
            False,
            f"Expected calibration error (10 equal-width bins) at most {e.max_calibration_error}.",
        ),
        GateSpec("small_slices", False, f"Every slice has at least {e.min_slice_rows} rows."),
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


def _slice_gap(s: SliceReport, e: EvaluationSection) -> GateResult:
    expected = f"<= {e.max_slice_gap}"
    if not s.slices:
        return GateResult("slice_gap", True, True, None, expected, "no slice columns")
    if s.worst is None:
        return GateResult(
            "slice_gap", True, True, None, expected, f"no slice with >= {s.min_rows} rows"
        )
    ok = s.gap <= e.max_slice_gap
    detail = (
        f"overall {s.metric} {s.overall:.4f}, worst slice {s.worst.column}={s.worst.value} "
        f"{s.worst.metric:.4f} ({s.worst.rows} rows)"
    )
    return GateResult("slice_gap", ok, True, s.gap, expected, detail)


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


def _calibration(metrics: Metrics, e: EvaluationSection) -> GateResult:
    expected = f"<= {e.max_calibration_error}"
    if metrics.task != "binary":
        return GateResult(
            "calibration", True, False, None, expected, "not applicable to regression"
        )
    ece = metrics["ece"]
    ok = ece <= e.max_calibration_error
    return GateResult("calibration", ok, False, ece, expected, f"ECE = {ece:.4f}")


def _small_slices(s: SliceReport, e: EvaluationSection) -> GateResult:
    small = s.small
    listed = ", ".join(f"{x.column}={x.value} ({x.rows})" for x in small[:SMALL_SLICES_LISTED])
    more = (
        f" and {len(small) - SMALL_SLICES_LISTED} more" if len(small) > SMALL_SLICES_LISTED else ""
    )
    detail = f"excluded from the slice gap: {listed}{more}" if small else "none"
    return GateResult("small_slices", not small, False, len(small), "0 slices", detail)


def gate_results(
    metrics: Metrics,
    comparison: Comparison,
    slices: SliceReport,
    evaluation: EvaluationSection,
) -> list[GateResult]:
    """All gates, in `gate_specs` order. Blocking: floor, non-inferiority, slice gap, leakage."""
    check_metric(evaluation.metric, metrics.task)
    e = evaluation
    return [
        _floor(metrics, e),
        _non_inferiority(comparison, e),
        _slice_gap(slices, e),
        _leakage(metrics, e),
        _calibration(metrics, e),
        _small_slices(slices, e),
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
