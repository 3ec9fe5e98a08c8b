"""An evaluation as JSON: what a model card needs, kept with the model version in MLflow.

The card of a version rolled back to must show *that* version's evaluation, long after the
evaluation asset moved on to other candidates. JSON (not a pickle) keeps it readable, safe to
load, and independent of the Python classes that produced it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import mlflow

from ml_assets.core.jsonable import json_ready
from ml_assets.core.model import ModelRef
from ml_assets.layers.evaluate.baseline import BaselineReport
from ml_assets.layers.evaluate.gates import GateResult
from ml_assets.layers.evaluate.metrics import Metrics
from ml_assets.layers.evaluate.slices import SliceMetric, SliceReport
from ml_assets.resources.mlflow_tracking import MlflowTracking

ARTIFACT = "evaluation/evaluation.json"
# 2 added the naive-baseline skill and the calibration; a format-1 record (a version evaluated
# before them, e.g. one rolled back to) still loads, without them.
FORMAT = 2
READABLE = (1, 2)


def _num(value: object) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class EvaluationRecord:
    """The parts of an evaluation that outlive its run: metrics, slices, importance, gates."""

    metrics: Metrics
    slices: SliceReport
    importance: dict[str, float]
    gates: list[GateResult]
    holdout: tuple[str, str]  # first and last day of the test holdout
    expected_trailing: float = float("nan")  # see evaluate/variability.py
    baselines: BaselineReport | None = None  # None in a format-1 record
    calibration: str = "none"

    def to_json(self) -> dict[str, object]:
        m = self.metrics
        return json_ready(
            {
                "format": FORMAT,
                "metrics": {
                    "task": m.task,
                    "rows": m.rows,
                    "label_mean": m.label_mean,
                    "values": m.values,
                    "threshold": m.threshold,
                    "flags": list(m.flags),
                },
                "slices": {
                    "metric": self.slices.metric,
                    "overall": self.slices.overall,
                    "min_rows": self.slices.min_rows,
                    "slices": [asdict(s) for s in self.slices.slices],
                    "worst": asdict(self.slices.worst) if self.slices.worst else None,
                    "gap": self.slices.gap,
                },
                "importance": self.importance,
                "gates": [asdict(g) for g in self.gates],
                "holdout": list(self.holdout),
                "expected_trailing": self.expected_trailing,
                "baselines": self.baselines.to_json() if self.baselines else None,
                "calibration": self.calibration,
            }
        )

    @classmethod
    def from_json(cls, raw: Mapping) -> EvaluationRecord:
        if raw.get("format") not in READABLE:
            raise ValueError(f"unknown evaluation record format {raw.get('format')!r}")
        m, s = raw["metrics"], raw["slices"]

        def slice_metric(d: Mapping) -> SliceMetric:
            return SliceMetric(
                **{**d, "label_mean": _num(d["label_mean"]), "metric": _num(d["metric"])}
            )

        return cls(
            metrics=Metrics(
                task=m["task"],
                rows=m["rows"],
                label_mean=_num(m["label_mean"]),
                values={k: _num(v) for k, v in m["values"].items()},
                threshold=m["threshold"],
                flags=tuple(m["flags"]),
            ),
            slices=SliceReport(
                metric=s["metric"],
                overall=_num(s["overall"]),
                min_rows=s["min_rows"],
                slices=tuple(slice_metric(x) for x in s["slices"]),
                worst=slice_metric(s["worst"]) if s["worst"] else None,
                gap=_num(s["gap"]),
            ),
            importance={k: _num(v) for k, v in raw["importance"].items()},
            gates=[GateResult(**g) for g in raw["gates"]],
            holdout=(raw["holdout"][0], raw["holdout"][1]),
            expected_trailing=_num(raw.get("expected_trailing")),
            baselines=BaselineReport.from_json(raw["baselines"]) if raw.get("baselines") else None,
            calibration=raw.get("calibration", "none"),
        )


def load_record(tracking: MlflowTracking, ref: ModelRef) -> EvaluationRecord:
    """The evaluation `model_evaluation` recorded for `ref`'s version, from its MLflow run."""
    tracking.client()  # points MLflow at this resource's store
    try:
        raw = mlflow.artifacts.load_dict(f"runs:/{ref.run_id}/{ARTIFACT}")
    except Exception as exc:  # MLflow raises several types for a missing artifact
        raise FileNotFoundError(
            f"{ref.uri} has no recorded evaluation ({ARTIFACT} in run {ref.run_id}): "
            f"materialize model_evaluation for it first ({exc})"
        ) from None
    return EvaluationRecord.from_json(raw)
