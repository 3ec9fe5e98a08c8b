"""Global importance for XGBoost boosters and linear pipelines, on data of known structure."""

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml_assets.layers.evaluate.explain import ExplainError, global_importance
from ml_assets_tests.layers.evaluate.synthetic import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    binary_frame,
    fit_linear,
)


def booster(frame: pd.DataFrame) -> xgb.Booster:
    X = frame[FEATURES].astype({"c": "category"})
    data = xgb.DMatrix(X, label=frame["y"], enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 0}
    return xgb.train(params, data, num_boost_round=30)


def test_xgboost_importance_ranks_signal_over_noise() -> None:
    frame = binary_frame(3_000, seed=5)
    model = booster(frame)
    imp = global_importance(model, "xgboost", frame[FEATURES].astype({"c": "category"}))
    assert list(imp) == ["a", "c", "b", "k"]  # largest first: strong, moderate, noise, constant
    assert imp["k"] == 0.0  # a constant column is never split on
    assert imp["a"] > imp["c"] > 3 * imp["b"] > 0  # boosting fits some noise, not much
    # Contributions plus bias reproduce the margin, so the scale is log-odds.
    contribs = model.predict(
        xgb.DMatrix(frame[FEATURES].astype({"c": "category"}), enable_categorical=True),
        pred_contribs=True,
    )
    assert imp["a"] == pytest.approx(np.abs(contribs[:, 0]).mean(), rel=1e-6)


def test_xgboost_importance_accepts_object_categoricals_and_samples() -> None:
    frame = binary_frame(3_000, seed=5)
    model = booster(frame)
    full = global_importance(model, "xgboost", frame[FEATURES].astype({"c": "category"}))
    as_text = global_importance(model, "xgboost", frame[FEATURES])  # c as object dtype
    assert as_text == pytest.approx(full)
    sampled = global_importance(model, "xgboost", frame[FEATURES], max_rows=1_000)
    assert list(sampled)[:2] == ["a", "c"] and sampled != full
    with pytest.raises(ExplainError, match="lacks the model's features"):
        global_importance(model, "xgboost", frame[["a", "b"]])


def test_linear_importance_sums_one_hot_coefficients() -> None:
    frame = binary_frame(3_000, seed=5)
    pipe = fit_linear(frame, NUMERIC, CATEGORICAL)
    imp = global_importance(pipe, "linear", frame[FEATURES])
    coef = np.abs(pipe[-1].coef_[0])
    levels = len(pipe[0].named_transformers_["categorical"][-1].categories_[0])
    assert levels == 3 and coef.size == len(NUMERIC) + levels
    assert imp["c"] == pytest.approx(coef[len(NUMERIC) :].sum())
    assert imp["a"] == pytest.approx(coef[0]) and imp["b"] == pytest.approx(coef[1])
    # Signal over noise; sum |coef| over levels (here +/- around a baseline) can exceed `a`'s.
    assert min(imp["a"], imp["c"]) > 5 * imp["b"]
    assert set(imp) == set(FEATURES)


def test_linear_importance_without_column_transformer_and_bad_input() -> None:
    frame = binary_frame(1_000, seed=2)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[["a", "b"]], frame["y"])
    imp = global_importance(pipe, "linear", frame[["a", "b"]])
    assert imp == pytest.approx(dict(zip(["a", "b"], np.abs(pipe[-1].coef_[0]), strict=True)))
    with pytest.raises(ExplainError, match="expected an sklearn Pipeline"):
        global_importance(pipe[-1], "linear", frame)
    with pytest.raises(ExplainError, match="unknown model family"):
        global_importance(pipe, "forest", frame)


def test_xgboost_sklearn_api_model_with_unseen_and_missing_levels() -> None:
    frame = binary_frame(3_000, seed=6)
    X = frame[FEATURES].astype({"c": pd.CategoricalDtype(["x", "y", "z"])})
    model = xgb.XGBClassifier(
        n_estimators=30, max_depth=3, enable_categorical=True, tree_method="hist", random_state=0
    ).fit(X, frame["y"])
    imp = global_importance(model, "xgboost", X)
    assert list(imp)[:2] == ["a", "c"]
    # Evaluation rows may hold a level unseen in training or NULL: still explained, not an error.
    later = X.copy()
    text = later["c"].astype(str).where(later.index % 7 != 0, None)
    later["c"] = pd.Categorical(text.where(later.index % 5 != 0, "w"))  # "w": never trained on
    assert set(global_importance(model, "xgboost", later)) == set(FEATURES)
