"""Feature importance and per-row contributions from the raw model objects MLflow loads back.

XGBoost: mean |SHAP contribution| per feature (`pred_contribs=True`), in log-odds (binary) or
label units (regression): it measures how much each feature moves predictions on the evaluated
rows, unlike split gain, which favours high-cardinality features.

Linear: |coefficient| on the model's standardized inputs, summed over a categorical feature's
one-hot columns, so a feature with many levels is reported once, as one input. This assumes the
pipeline standardizes its numeric inputs (otherwise coefficients are in incomparable units).

Per row (`contributions`, what the scoring layer stores for audit): TreeSHAP values, or
coefficient x standardized input, both additive in the raw model's margin units.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ml_assets.core.matrix import to_text_categoricals

DEFAULT_MAX_ROWS = 5_000


class ExplainError(ValueError):
    """The model object or frame cannot be explained as given."""


def _sorted(importance: dict[str, float]) -> dict[str, float]:
    return dict(sorted(importance.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class Contributions:
    """Each row's additive explanation in the model's margin units (log-odds for a binary model,
    label units for regression), before any calibration: `base[i] + values[i].sum() ==` the
    raw model's margin for row i. `values` has one column per input feature, in `features`
    order."""

    features: tuple[str, ...]
    values: np.ndarray  # (rows, features)
    base: np.ndarray  # (rows,)

    @property
    def margin(self) -> np.ndarray:
        return self.base + self.values.sum(axis=1)


def _booster_frame(booster: object, X: pd.DataFrame):
    """The Booster behind an XGBoost model and X as its DMatrix expects: its feature order, and
    object columns of categorical features as pandas categories."""
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
    return booster, names, frame


@contextlib.contextmanager
def _all_cores(booster) -> Iterator[None]:
    """The booster on every core (at most 2) for one exact TreeSHAP pass, then as it was.

    Models train on one thread (families.THREADS: they share the box with the search's other
    trials); the evaluation step explains alone, and each row's contributions do not depend on
    the thread count, so two threads halve the step's largest part with identical values."""
    before = json.loads(booster.save_config())["learner"]["generic_param"]["nthread"]
    booster.set_param({"nthread": max(1, min(2, os.cpu_count() or 1))})
    try:
        yield
    finally:
        booster.set_param({"nthread": int(before)})


def _tree_shap(booster, frame: pd.DataFrame, approximate: bool = False) -> np.ndarray:
    import xgboost as xgb

    # (rows, features + 1): the last column is the bias; multi-output adds a class axis.
    return booster.predict(
        xgb.DMatrix(frame, enable_categorical=True),
        pred_contribs=True,
        approx_contribs=approximate,
    )


def xgboost_contributions(
    booster: object, X: pd.DataFrame, approximate: bool = False
) -> Contributions:
    """TreeSHAP contributions of every row of X (`pred_contribs=True`), single-output models.

    `approximate`: Saabas' path attributions instead (`approx_contribs=True`): each split's
    change of the expected value goes to its feature. Also additive to the margin, and about 25x
    cheaper (one path per tree instead of every leaf; on the flights champion, 300 trees: 21.7k
    vs 856 rows/s on one thread), but not Shapley values: features split near the root get more
    credit than their share.
    """
    booster, names, frame = _booster_frame(booster, X)
    contribs = _tree_shap(booster, frame, approximate)
    if contribs.ndim != 2:
        raise ExplainError("per-row contributions need a single-output model")
    values = contribs[:, :-1].astype("float64")
    return Contributions(tuple(names), values, contribs[:, -1].astype("float64"))


def xgboost_importance(
    booster: object, X: pd.DataFrame, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0
) -> dict[str, float]:
    """Mean |contribution| per feature over (a seeded sample of at most `max_rows` of) X."""
    booster, names, frame = _booster_frame(booster, X)
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    with _all_cores(booster):
        mean_abs = np.abs(_tree_shap(booster, frame)).mean(axis=0)
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


def _coefficients(pipeline: object) -> tuple[Pipeline, np.ndarray, list[str]]:
    """The pipeline, its model's coefficients (classes x transformed columns) and, for each
    transformed column, the input it came from."""
    if not isinstance(pipeline, Pipeline):
        raise ExplainError(f"expected an sklearn Pipeline, got {type(pipeline).__name__}")
    model = pipeline.steps[-1][1]
    coef = getattr(model, "coef_", None)
    if coef is None:
        raise ExplainError(
            f"the final step {type(model).__name__} has no coef_ (not fitted/linear)"
        )
    coef = np.atleast_2d(coef)
    sources = _output_sources(pipeline)
    if len(sources) != coef.shape[1]:
        raise ExplainError(f"{coef.shape[1]} coefficients but {len(sources)} transformed columns")
    return pipeline, coef, sources


def linear_importance(pipeline: object) -> dict[str, float]:
    """Sum of |coef| per pipeline input over the columns it becomes (one-hot levels)."""
    pipeline, coef, sources = _coefficients(pipeline)
    importance = {str(c): 0.0 for c in pipeline.feature_names_in_}
    for source, value in zip(sources, np.abs(coef).sum(axis=0), strict=True):
        importance[source] += float(value)
    return _sorted(importance)


def linear_contributions(pipeline: object, X: pd.DataFrame) -> Contributions:
    """Coefficient x transformed input per row, summed over an input's one-hot columns.

    A numeric input's contribution is its coefficient times its standardized (imputed) value, so
    it is measured from the training mean; a categorical input's is the coefficient of its level
    (0 for a missing or unseen one). The base is the intercept, and base + contributions is the
    model's decision function: log-odds (logistic) or the prediction (ridge).
    """
    pipeline, coef, sources = _coefficients(pipeline)
    if coef.shape[0] != 1:
        raise ExplainError("per-row contributions need a single-output model")
    if len(X) == 0:
        raise ExplainError("no rows to explain")
    inputs = [str(c) for c in pipeline.feature_names_in_]
    transformed = pipeline[:-1].transform(to_text_categoricals(X[inputs]))
    # A 0/1 matrix folding each transformed column into its input: one sparse product, no loop
    # over rows (one-hot output stays sparse).
    position = {c: i for i, c in enumerate(inputs)}
    fold = sparse.csr_matrix(
        (
            np.ones(len(sources)),
            (np.arange(len(sources)), [position[s] for s in sources]),
        ),
        shape=(len(sources), len(inputs)),
    )
    weighted = sparse.csr_matrix(transformed).multiply(coef[0]).tocsr()
    values = np.asarray((weighted @ fold).todense(), dtype="float64")
    intercept = float(np.ravel(getattr(pipeline.steps[-1][1], "intercept_", 0.0))[0])
    return Contributions(tuple(inputs), values, np.full(len(X), intercept))


def contributions(
    model_object: object, family: str, X: pd.DataFrame, approximate: bool = False
) -> Contributions:
    """Per-row contributions of `family`'s model object (what MLflow loads) on the model matrix
    X; `approximate` applies to XGBoost only (see `xgboost_contributions`)."""
    if family == "xgboost":
        return xgboost_contributions(model_object, X, approximate)
    if family == "linear":
        return linear_contributions(model_object, X)
    raise ExplainError(f"unknown model family {family!r}; expected 'xgboost' or 'linear'")


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
