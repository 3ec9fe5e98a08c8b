"""The champion as data: which registered version serves, and what it was judged on."""

from __future__ import annotations

from dataclasses import dataclass

from ml_assets.core.model import ModelRef


@dataclass(frozen=True)
class Champion:
    """What scoring and monitoring need: the model, and the evaluation it was promoted on."""

    ref: ModelRef
    metric: str  # the spec's primary metric
    metric_value: float  # on the evaluation holdout the champion was promoted (or restored) with
    metrics: dict[str, float | None]
    decision: str  # promoted | rollback
    decided_at: str
    # The worst trailing-window metric expected by chance on the holdout (NaN if unknown): what
    # monitoring compares the realized trailing metric with.
    expected_trailing: float = float("nan")
    # The decision threshold stored with the version (binary; None for regression), which its
    # evaluation used: monitoring's realized F1/precision/recall use the same one.
    threshold: float | None = None
