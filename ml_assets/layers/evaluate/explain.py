"""Global feature importance from the raw model objects that MLflow loads back.

XGBoost: mean |SHAP contribution| per feature (`pred_contribs=True`), in log-odds (binary) or
label units (regression): it measures how much each feature moves predictions on the evaluated
rows, unlike split gain, which favours high-cardinality features.

Linear: |coefficient| on the model's standardized inputs, summed over a categorical feature's
one-hot columns, so a feature with many levels is reported once, as one input. This assumes the
pipeline standardizes its numeric inputs (otherwise coefficients are in incomparable units).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

DEFAULT_MAX_ROWS = 5_000


class ExplainError(ValueError):
    """The model object or frame cannot be explained as given."""


def _sorted(importance: dict[str, float]) -> dict[str, float]:
    return dict(sorted(importance.items(), key=lambda kv: (-kv[1], kv[0])))


def xgboost_importance(
    booster: object, X: pd.DataFrame, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
) -> dict[str, float]:
    """Mean |contribution| per feature over (a seeded sample of at most `max_rows` of) X."""
    import xgboost as xgb

    if isinstance(booster, xgb.XGBModel):
        booster = booster.get_booster()
    if not isinstance(booster, xgb.Booster):
        raise ExplainError(f"expected an xgboost Booster, got {type(booster).__name__}")
    names = booster.feature_names or list(X.columns)
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise ExplainError(f"the frame lacks the model's features {missing}")
    if len(X) == 0:
        raise ExplainError("no rows to explain")
    frame = X[names]
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    types = booster.feature_types or ["float"] * len(names)
    # The booster re-codes pandas categories to its training categories; object columns must
    # become `category` first, which DMatrix requires for categorical features.
    converted = {
        c: frame[c].astype("category")
        for c, t in zip(names, types, strict=True)
        if t == "c" and not isinstance(frame[c].dtype, pd.CategoricalDtype)
    }
    if converted:
        frame = frame.assign(**converted)
    contribs = booster.predict(xgb.DMatrix(frame, enable_categorical=True), pred_contribs=True)
    # Last column is the bias term; multi-output models have a class axis in the middle.
    mean_abs = np.abs(contribs).mean(axis=0)
    if mean_abs.ndim == 2:
        mean_abs = mean_abs.sum(axis=0)
    return _sorted({n: float(v) for n, v in zip(names, mean_abs[:-1], strict=True)})


def _source(output: str, inputs: Sequence[str]) -> str:
    """The input column an output column comes from: same name, or the longest `input_` prefix."""
    if output in inputs:
        return output
    candidates = [c for c in inputs if output.startswith(f"{c}_")]
    if len(inputs) == 1 and not candidates:
        return inputs[0]
    if not candidates:
        raise ExplainError(f"cannot map transformed column {output!r} back to one of {inputs}")
    return max(candidates, key=len)


def _output_sources(pipeline: Pipeline) -> list[str]:
    """For each column the model step sees, the pipeline input it was made from."""
    inputs = [str(c) for c in pipeline.feature_names_in_]
    pre = [step for _, step in pipeline.steps[:-1]]
    transformers = [s for s in pre if isinstance(s, ColumnTransformer)]
    if not transformers:
        if not pre:
            return inputs
        outputs = pipeline[:-1].get_feature_names_out(inputs)
        return [_source(str(o), inputs) for o in outputs]
    if len(pre) != 1:
        raise ExplainError("expected a ColumnTransformer as the only step before the model")
    ct = transformers[0]
    sources: list[str] = []
    for name, transformer, columns in ct.transformers_:
        span = ct.output_indices_[name]
        if transformer == "drop" or span.stop == span.start:
            continue
        cols = [inputs[c] if isinstance(c, int | np.integer) else str(c) for c in columns]
        outs = cols if transformer == "passthrough" else transformer.get_feature_names_out(cols)
        sources += [_source(str(o), cols) for o in outs]
    return sources


def linear_importance(pipeline: object) -> dict[str, float]:
    """Sum of |coef| per pipeline input over the columns it becomes (one-hot levels)."""
    if not isinstance(pipeline, Pipeline):
        raise ExplainError(f"expected an sklearn Pipeline, got {type(pipeline).__name__}")
    model = pipeline.steps[-1][1]
    coef = getattr(model, "coef_", None)
    if coef is None:
        raise ExplainError(
            f"the final step {type(model).__name__} has no coef_ (not fitted/linear)"
        )
    coef = np.abs(np.atleast_2d(coef)).sum(axis=0)
    sources = _output_sources(pipeline)
    if len(sources) != coef.size:
        raise ExplainError(f"{coef.size} coefficients but {len(sources)} transformed columns")
    importance = {str(c): 0.0 for c in pipeline.feature_names_in_}
    for source, value in zip(sources, coef, strict=True):
        importance[source] += float(value)
    return _sorted(importance)


def global_importance(
    model_object: object,
    family: str,
    X: pd.DataFrame,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> dict[str, float]:
    """Importance per input feature, largest first; see the module docstring for the units.

    `model_object` is what MLflow loads: an `xgboost.Booster` (or sklearn-API XGBModel) for
    family "xgboost", an sklearn `Pipeline` ending in a linear model for family "linear". `X` is
    the evaluated feature frame (used by XGBoost; the linear importance needs only the model).
    """
    if family == "xgboost":
        return xgboost_importance(model_object, X, max_rows=max_rows)
    if family == "linear":
        return linear_importance(model_object)
    raise ExplainError(f"unknown model family {family!r}; expected 'xgboost' or 'linear'")
