"""The champion as data: which registered version serves, and what it was judged on."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ml_assets.models import ModelRef


@dataclass(frozen=True)
class Champion:
    """What scoring and monitoring need: the model, and the evaluation it was promoted on."""

    ref: ModelRef
    metric: str  # the spec's primary metric
    metric_value: float  # on the evaluation holdout the champion was promoted (or restored) with
    metrics: dict[str, float | None]
    decision: str  # promoted | rollback
    decided_at: str


def metrics_json(values: dict[str, float]) -> dict[str, float | None]:
    """Metric values with NaN as None, so they survive JSON and Dagster metadata."""
    return {k: (None if v != v else float(v)) for k, v in values.items()}


def dumps(values: dict) -> str:
    return json.dumps(values, sort_keys=True)
