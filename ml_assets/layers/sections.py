"""Typed views of the spec sections owned by the model-side layers.

`DatasetSpec` keeps `features`, `training`, `evaluation` and `monitoring` as plain mappings so the
foundation does not depend on later layers; each layer reads its section through these models,
which raise `SpecError` naming the file and field like the rest of the spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml_assets.specs import DatasetSpec, SpecError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureColumn(_Section):
    kind: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    max_null_rate: float = Field(0.05, ge=0, le=1)


class FeaturesSection(_Section):
    sql: list[str] = Field(
        ..., min_length=1, description="SQL files, relative to the spec's folder."
    )
    columns: dict[str, FeatureColumn] = Field(..., min_length=1)
    lookback_days: int = Field(28, ge=0, description="How far back any feature window reaches.")

    def sql_paths(self, spec: DatasetSpec) -> list[Path]:
        base = spec.path.parent if spec.path else Path.cwd()
        return [base / p for p in self.sql]

    @property
    def numeric(self) -> list[str]:
        return [c for c, f in self.columns.items() if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [c for c, f in self.columns.items() if f.kind == "categorical"]


class SplitSection(_Section):
    validation_days: int = Field(14, ge=1)
    test_days: int = Field(14, ge=1)


class SearchSection(_Section):
    method: Literal["random", "halving"] = "random"
    budget: int = Field(8, ge=1, description="Parameter sets tried per model family.")


class TrainingSection(_Section):
    window_days: int = Field(
        120, ge=3, description="Most recent days of labelled features to train on."
    )
    split: SplitSection = Field(default_factory=SplitSection)
    seed: int = 42
    search: SearchSection = Field(default_factory=SearchSection)
    models: list[Literal["xgboost", "linear"]] = Field(
        default_factory=lambda: ["xgboost", "linear"]
    )
    registered_model_name: str | None = Field(None, description="Defaults to `<dataset>_model`.")


class EvaluationSection(_Section):
    metric: str = Field("roc_auc", description="Primary metric (higher is better; rmse/mae lower).")
    floor: float = Field(
        ..., description="Blocking: the candidate's primary metric must reach this."
    )
    non_inferiority_tolerance: float = Field(0.01, ge=0)
    max_slice_gap: float = Field(0.15, ge=0)
    min_slice_rows: int = Field(200, ge=1)
    max_calibration_error: float = Field(0.05, ge=0)
    leakage_ceiling: float = Field(0.995, description="A primary metric this good is implausible.")
    threshold: float = Field(
        0.5, ge=0, le=1, description="Decision threshold for F1/precision/recall."
    )


class MonitoringSection(_Section):
    drift_share_warn: float = Field(0.3, ge=0, le=1)
    drift_share_severe: float = Field(0.6, ge=0, le=1)
    drift_p_value: float = Field(0.01, gt=0, lt=1)
    performance_tolerance: float = Field(0.05, ge=0)
    performance_window_days: int = Field(7, ge=1, description="Trailing days pooled per verdict.")
    performance_min_rows: int = Field(
        2000, ge=1, description="Fewer labelled rows in the trailing window: too noisy to judge."
    )
    champion_max_age_days: int = Field(30, ge=1)
    retrain_on: list[str] = Field(
        default_factory=lambda: ["drift_report:severe_drift", "performance:degradation"],
        description="Failed checks (`<asset>:<check>`) that request a retrain.",
    )
    # Measured in data days, not wall-clock hours: a replay or backfill moves through months in
    # minutes, and must retrain exactly as often as the same days would live.
    retrain_cooldown_days: int = Field(7, ge=0)
    evidently_sample_rows: int = Field(20_000, ge=100)


S = TypeVar("S", bound=_Section)


def section(spec: DatasetSpec, name: str, model: type[S]) -> S:
    """Parse one section of a spec, with errors that name the spec file and the field."""
    try:
        return model.model_validate(getattr(spec, name))
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{name}.{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"{spec.path}: {problems}") from None


def features_of(spec: DatasetSpec) -> FeaturesSection:
    return section(spec, "features", FeaturesSection)


def training_of(spec: DatasetSpec) -> TrainingSection:
    return section(spec, "training", TrainingSection)


def evaluation_of(spec: DatasetSpec) -> EvaluationSection:
    return section(spec, "evaluation", EvaluationSection)


def monitoring_of(spec: DatasetSpec) -> MonitoringSection:
    return section(spec, "monitoring", MonitoringSection)
