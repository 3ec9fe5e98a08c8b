"""The model matrix: the one place feature columns become what a model sees.

Training, evaluation and scoring all pass rows through `model_matrix` with the `FeatureSchema`
stored beside the model, so a model never sees features prepared differently from how it was
trained. Categorical levels are frozen at training time: a value the model never saw becomes
missing (XGBoost routes it down the learned default branch; the linear pipeline's one-hot
encoder ignores it) instead of shifting codes or crashing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml_assets.core.spec import FeaturesSection


@dataclass(frozen=True)
class FeatureSchema:
    """Feature columns in model order, which of them are categorical, and their training levels."""

    features: tuple[str, ...]
    categorical: tuple[str, ...]
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(c for c in self.features if c not in self.categorical)

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "categorical": list(self.categorical),
            "levels": {c: list(v) for c, v in self.levels.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping) -> FeatureSchema:
        return cls(
            features=tuple(raw["features"]),
            categorical=tuple(raw["categorical"]),
            levels={c: tuple(v) for c, v in raw.get("levels", {}).items()},
        )


def declared_schema(section: FeaturesSection) -> FeatureSchema:
    """The spec's feature columns, in declaration order, before any levels are learned."""
    return FeatureSchema(features=tuple(section.columns), categorical=tuple(section.categorical))


def _as_text(values: pd.Series) -> pd.Series:
    # Categorical values are VARCHAR in the warehouse; a caller's ints ("weekday": 3) are
    # compared as the same text so scoring does not depend on how a frame was built.
    text = values.astype("string")
    return text.astype(object).where(text.notna(), None)


def fit_schema(frame: pd.DataFrame, declared: FeatureSchema) -> FeatureSchema:
    """Learn each categorical column's levels (sorted, NULL excluded) from the training rows."""
    _require_columns(frame, declared.features)
    levels = {
        c: tuple(sorted(v for v in _as_text(frame[c]).unique() if v is not None))
        for c in declared.categorical
    }
    return FeatureSchema(declared.features, declared.categorical, levels)


def model_matrix(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Feature columns in model order: numeric as float64, categorical with the training levels.

    Extra columns (keys, labels, lineage) are dropped; a missing feature column is an error.
    """
    _require_columns(frame, schema.features)
    out: dict[str, pd.Series] = {}
    for col in schema.features:
        if col in schema.categorical:
            dtype = pd.CategoricalDtype(list(schema.levels.get(col, ())))
            out[col] = _as_text(frame[col]).astype(dtype)
        else:
            try:
                out[col] = pd.to_numeric(frame[col], errors="raise").astype("float64")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"feature column '{col}' is numeric but holds {exc}") from None
    return pd.DataFrame(out, index=frame.index)


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"frame is missing feature columns {missing}")


def to_text_categoricals(X: pd.DataFrame) -> pd.DataFrame:
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    if not cats:
        return X
    out = X.copy()
    for c in cats:
        out[c] = X[c].astype(object).where(X[c].notna(), np.nan)
    return out
