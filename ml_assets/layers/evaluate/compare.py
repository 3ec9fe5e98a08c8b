"""Candidate versus champion on the same held-out rows: deltas and a non-inferiority verdict.

Non-inferiority rather than "strictly better": a retrained model on fresher data that is as good
as the champion within a tolerance should replace it, or the champion only ever ages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ml_assets.core.metrics import EvaluationError, check_metric, higher_is_better
from ml_assets.layers.evaluate.metrics import Metrics


@dataclass(frozen=True)
class Comparison:
    metric: str
    higher_is_better: bool
    tolerance: float
    candidate: float
    champion: float | None  # None when there is no champion yet
    delta: float | None  # candidate - champion on the primary metric (raw sign)
    improvement: float | None  # delta signed so that positive means the candidate is better
    deltas: dict[str, float]  # candidate - champion for every metric both have
    non_inferior: bool
    detail: str

    @property
    def has_champion(self) -> bool:
        return self.champion is not None


def compare(
    candidate: Metrics, champion: Metrics | None, metric: str, tolerance: float
) -> Comparison:
    """Is the candidate no worse than the champion by more than `tolerance` on `metric`?

    Higher-is-better: candidate >= champion - tolerance. Lower-is-better (rmse, log_loss...):
    candidate <= champion + tolerance. With no champion the candidate is non-inferior by
    definition. A NaN on either side is not evidence of non-inferiority.
    """
    check_metric(metric, candidate.task)
    if tolerance < 0:
        raise EvaluationError(f"tolerance must be >= 0, got {tolerance}")
    up = higher_is_better(metric)
    cand = candidate[metric]
    if champion is None:
        return Comparison(
            metric=metric,
            higher_is_better=up,
            tolerance=tolerance,
            candidate=cand,
            champion=None,
            delta=None,
            improvement=None,
            deltas={},
            non_inferior=True,
            detail="no champion yet: nothing to be inferior to",
        )
    if champion.task != candidate.task:
        raise EvaluationError(
            f"candidate task {candidate.task!r} differs from champion task {champion.task!r}"
        )
    champ = champion[metric]
    deltas = {
        k: v - champion.values[k] for k, v in candidate.values.items() if k in champion.values
    }
    delta = cand - champ
    improvement = delta if up else -delta
    if math.isnan(cand) or math.isnan(champ):
        ok, detail = False, f"{metric} undefined (candidate {cand}, champion {champ})"
    else:
        # The epsilon keeps a candidate exactly at the bound (0.79 vs 0.80 - 0.01) non-inferior.
        ok = improvement >= -tolerance - 1e-12
        bound = champ - tolerance if up else champ + tolerance
        sign = ">=" if up else "<="
        detail = (
            f"candidate {metric} {cand:.4f} vs champion {champ:.4f} "
            f"(needs {sign} {bound:.4f}): {'non-inferior' if ok else 'inferior'}"
        )
    return Comparison(
        metric=metric,
        higher_is_better=up,
        tolerance=tolerance,
        candidate=cand,
        champion=champ,
        delta=delta,
        improvement=improvement,
        deltas=deltas,
        non_inferior=ok,
        detail=detail,
    )
