"""Per-prediction explanations: real DuckDB, real MLflow, versions trained by `model_candidate`.

Each stored explanation is checked against an independent reference: XGBoost's own TreeSHAP
(`pred_contribs=True`) and margin (`output_margin=True`) for the same rows, and coefficient x
standardized input recomputed from the fitted pipeline's imputer, scaler and one-hot levels.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ml_assets.core.matrix import FeatureSchema, fit_schema, model_matrix, to_text_categoricals
from ml_assets.core.predictor import RegisteredPredictor, load_predictor
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.evaluate.explain import linear_contributions, xgboost_contributions
from ml_assets.layers.score import logic
from ml_assets.layers.score.explanations import top_k
from ml_assets.layers.score.logic import ScoreWrite, features_frame, score_window
from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.families import fit, make_model
from ml_assets.provenance import prediction_explanation
from ml_assets_tests.layers.train.conftest import (
    Store,
    load_features,
    make_store,
    synthetic_features,
    write_spec,
)

START, END = dt.date(2024, 2, 1), dt.date(2024, 2, 4)
SCORED_AT = dt.datetime(2024, 2, 10, tzinfo=dt.UTC)


@dataclass
class Models:
    store: Store
    specs: Path
    predictors: dict[str, RegisteredPredictor]

    def spec(self, k: int, xgboost: str = "tree_shap") -> DatasetSpec:
        scoring = f"{{explain_top_k: {k}, xgboost_contributions: {xgboost}}}"
        return write_spec(self.specs / f"k{k}{xgboost}", "synth", scoring=scoring)

    def score(
        self, family: str, k: int = 3, run_id: str = "score-run", xgboost: str = "tree_shap"
    ) -> ScoreWrite:
        with duckdb.connect(self.store.warehouse.database) as conn:
            return score_window(
                conn,
                self.spec(k, xgboost),
                self.predictors[family],
                START,
                END,
                run_id=run_id,
                scored_at=SCORED_AT,
            )

    def frame(self, sql: str) -> pd.DataFrame:
        return self.store.frame(sql)

    def features(self, family: str) -> pd.DataFrame:
        ref = self.predictors[family].ref
        with duckdb.connect(self.store.warehouse.database) as conn:
            return features_frame(conn, self.spec(3), list(ref.features), START, END)


WINDOW = f"_partition_date BETWEEN '{START}' AND '{END}'"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    """One XGBoost and one linear version of `synth_model`, trained by real Dagster runs."""
    store = make_store(tmp_path_factory.mktemp("explain_store"))
    specs = tmp_path_factory.mktemp("explain_specs")
    load_features(store, "synth", "binary", days=40, rows_per_day=250)
    predictors = {}
    for family in ("xgboost", "linear"):
        spec = write_spec(specs / family, "synth", models=f"[{family}]")
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                build_train_assets(spec), instance=instance, resources=store.resources()
            )
        ref = result.output_for_node("synth__model_candidate")
        predictors[family] = load_predictor(ref, store.tracking)
    return Models(store, specs, predictors)


def _stored(models: Models) -> pd.DataFrame:
    return models.frame(
        f"SELECT * FROM synth.explanations WHERE {WINDOW} ORDER BY _partition_date, _key"
    )


def _picks(stored: pd.DataFrame, field: str) -> list[list]:
    return [[t[field] for t in row] for row in stored["top_contributions"]]


def _check_additive_and_largest(stored: pd.DataFrame, full: np.ndarray, names: list[str]) -> None:
    """Per row: base + top + other = raw margin; the top K are the K largest |contributions| of
    the reference matrix, each equal to that feature's reference contribution, largest first."""
    contribution = np.array(_picks(stored, "contribution"))
    k = contribution.shape[1]
    np.testing.assert_allclose(
        stored["base_margin"] + contribution.sum(axis=1) + stored["other_contribution"],
        stored["raw_margin"],
        atol=1e-9,
    )
    assert (np.diff(np.abs(contribution), axis=1) <= 0).all()
    largest = -np.sort(-np.abs(full), axis=1)[:, :k]
    np.testing.assert_allclose(np.abs(contribution), largest, atol=1e-6)
    index = np.array([[names.index(f) for f in row] for row in _picks(stored, "feature")])
    np.testing.assert_allclose(contribution, np.take_along_axis(full, index, axis=1), atol=1e-6)
    assert (np.array(_picks(stored, "rank")) == np.arange(1, k + 1)).all()


def test_one_tree_shap_explanation_per_scored_row_adding_up_to_the_margin(models: Models) -> None:
    predictor = models.predictors["xgboost"]
    written = models.score("xgboost", k=3)
    stored = _stored(models)
    predictions = models.frame(
        f"SELECT _key, _partition_date, model_version FROM synth.predictions WHERE {WINDOW} ORDER BY _partition_date, _key"
    )
    # One explanation per scored row, for the same model version.
    assert written.rows == written.explained == len(predictions) == len(stored) == 4 * 250
    pd.testing.assert_frame_equal(
        stored[["_key", "_partition_date", "model_version"]], predictions, check_dtype=False
    )
    assert set(stored["method"]) == {"tree_shap"} and set(stored["margin_units"]) == {"log_odds"}
    assert set(stored["dagster_run_id"]) == {"score-run"}

    features = models.features("xgboost")
    assert (features["_key"].to_numpy() == stored["_key"].to_numpy()).all()
    X = model_matrix(features, predictor.schema)
    booster = predictor.model.get_booster()
    matrix = xgb.DMatrix(X, enable_categorical=True)
    reference = booster.predict(matrix, pred_contribs=True)
    margin = booster.predict(matrix, output_margin=True)
    # XGBoost's identity: every contribution plus the bias is the margin (float32 sums).
    np.testing.assert_allclose(reference.sum(axis=1), margin, atol=1e-4)
    np.testing.assert_allclose(stored["raw_margin"], margin, atol=1e-4)
    np.testing.assert_allclose(stored["base_margin"], reference[:, -1], atol=1e-6)
    _check_additive_and_largest(stored, reference[:, :-1].astype("float64"), list(X.columns))
    # Margin units, before calibration: the raw model's probability is its sigmoid.
    np.testing.assert_allclose(
        1 / (1 + np.exp(-stored["raw_margin"])), predictor.raw_predict(features), atol=1e-6
    )
    # Each pick carries the value the model saw.
    for row, (i, picks) in enumerate(stored["top_contributions"].items()):
        for pick in picks:
            seen = X[pick["feature"]].iloc[row]
            if pd.isna(seen):
                assert pick["value"] is None, (i, pick)
            elif pick["feature"] in predictor.schema.categorical:
                assert pick["value"] == seen, (i, pick)
            else:
                assert float(pick["value"]) == pytest.approx(seen, rel=1e-12), (i, pick)


def test_saabas_contributions_are_xgboosts_approximate_ones(models: Models) -> None:
    """The cheaper option: XGBoost's path attributions, also adding up to the margin."""
    predictor = models.predictors["xgboost"]
    models.score("xgboost", k=3, xgboost="saabas")
    stored = _stored(models)
    assert set(stored["method"]) == {"saabas"}
    X = model_matrix(models.features("xgboost"), predictor.schema)
    matrix = xgb.DMatrix(X, enable_categorical=True)
    booster = predictor.model.get_booster()
    approximate = booster.predict(matrix, pred_contribs=True, approx_contribs=True)
    _check_additive_and_largest(stored, approximate[:, :-1].astype("float64"), list(X.columns))
    np.testing.assert_allclose(
        stored["raw_margin"], booster.predict(matrix, output_margin=True), atol=1e-4
    )
    exact = booster.predict(matrix, pred_contribs=True)
    assert np.abs(approximate - exact).max() > 1e-3  # a different attribution, not TreeSHAP


def _coef_times_standardized(pipeline, X: pd.DataFrame, schema) -> np.ndarray:
    """The linear reference, from the fitted steps: coef x (imputed x - mean) / scale for a
    numeric input; a categorical input's level coefficient (0 if unseen)."""
    columns = pipeline.named_steps["columns"]
    coef = pipeline.named_steps["model"].coef_.ravel()
    numeric = columns.named_transformers_["numeric"]
    fill = numeric.named_steps["impute"].statistics_
    scaler = numeric.named_steps["scale"]
    onehot = columns.named_transformers_["categorical"].named_steps["onehot"]
    out = np.zeros(X.shape)
    for j, name in enumerate(schema.numeric):
        x = X[name].fillna(fill[j]).to_numpy()
        out[:, list(X.columns).index(name)] = coef[j] * (x - scaler.mean_[j]) / scaler.scale_[j]
    offset = len(schema.numeric)
    for c, name in enumerate(schema.categorical):
        levels = list(onehot.categories_[c])
        values = X[name].astype(object).to_numpy()
        out[:, list(X.columns).index(name)] = [
            coef[offset + levels.index(v)] if v in levels else 0.0 for v in values
        ]
        offset += len(levels)
    return out


def test_linear_contributions_are_coefficient_times_standardized_input(models: Models) -> None:
    predictor = models.predictors["linear"]
    written = models.score("linear", k=2)
    stored = _stored(models)
    assert written.explained == len(stored) == 4 * 250
    assert set(stored["method"]) == {"coef_x_standardized"}
    features = models.features("linear")
    X = model_matrix(features, predictor.schema)
    # A missing level and a missing number are explained too (as 0 and the imputed median).
    X.iloc[0, X.columns.get_loc("region")] = np.nan
    X.iloc[1, X.columns.get_loc("speed")] = np.nan
    reference = _coef_times_standardized(predictor.model, X, predictor.schema)
    found = linear_contributions(predictor.model, X)
    np.testing.assert_allclose(found.values, reference, atol=1e-12)
    decision = predictor.model.decision_function(to_text_categoricals(X))
    np.testing.assert_allclose(found.margin, decision, atol=1e-9)
    # The stored rows: the same contributions, the two largest of each row.
    X = model_matrix(features, predictor.schema)
    reference = _coef_times_standardized(predictor.model, X, predictor.schema)
    _check_additive_and_largest(stored, reference, list(X.columns))
    np.testing.assert_allclose(
        stored["raw_margin"],
        predictor.model.decision_function(to_text_categoricals(X)),
        atol=1e-9,
    )


@pytest.mark.parametrize("family", ["xgboost", "linear"])
def test_regression_contributions_add_up_to_the_prediction(family: str) -> None:
    """For regression the margin is the prediction itself, in label units."""
    rows = synthetic_features("regression", days=6, rows_per_day=100, seed=2)
    rows = rows[rows["_label"].notna()]
    schema = fit_schema(
        rows, FeatureSchema(("load", "speed", "hour", "region", "size"), ("region", "size"))
    )
    X = model_matrix(rows, schema)
    params = {"alpha": 1.0} if family == "linear" else {"n_estimators": 20, "max_depth": 3}
    model = fit(make_model(family, "regression", params, schema, 0), X, rows["_label"].to_numpy())
    found = (linear_contributions if family == "linear" else xgboost_contributions)(model, X)
    predicted = model.predict(to_text_categoricals(X) if family == "linear" else X)
    np.testing.assert_allclose(found.margin, predicted, atol=1e-9 if family == "linear" else 1e-4)


def test_lookup_by_key_returns_the_stored_explanation(models: Models) -> None:
    models.score("xgboost", k=3)
    version = models.predictors["xgboost"].ref.version
    key, day = models.frame(
        f"SELECT _key, _partition_date FROM synth.predictions WHERE {WINDOW} ORDER BY _key LIMIT 1 OFFSET 321"
    ).iloc[0]
    day = pd.Timestamp(day).date()
    with duckdb.connect(models.store.warehouse.database, read_only=True) as conn:
        found = prediction_explanation(conn, "synth", key, day, version)
        assert prediction_explanation(conn, "synth", key, day, "999") is None
        assert prediction_explanation(conn, "synth", "no-such-key", day, version) is None
        assert prediction_explanation(conn, "nothing_here", key, day, version) is None
    stored = _stored(models).set_index("_key").loc[key]
    assert found["_key"] == key and found["_partition_date"] == day
    assert found["model_version"] == version and found["margin_units"] == "log_odds"
    assert found["raw_margin"] == stored["raw_margin"]
    assert [t["feature"] for t in found["top_contributions"]] == [
        t["feature"] for t in stored["top_contributions"]
    ]
    total = found["base_margin"] + sum(t["contribution"] for t in found["top_contributions"])
    assert total + found["other_contribution"] == pytest.approx(found["raw_margin"], abs=1e-9)


def test_a_failed_explanation_write_leaves_the_previous_window(models: Models, monkeypatch) -> None:
    models.score("xgboost", k=3, run_id="first")

    def broken(*args, **kwargs) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(logic, "insert_explanations", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        models.score("xgboost", k=3, run_id="second")
    runs = models.frame(
        f"SELECT 'predictions' AS t, dagster_run_id, count(*) AS n FROM synth.predictions WHERE {WINDOW} GROUP BY ALL "
        f"UNION ALL SELECT 'explanations', dagster_run_id, count(*) FROM synth.explanations WHERE {WINDOW} GROUP BY ALL"
    )
    assert sorted(map(tuple, runs.to_numpy())) == [
        ("explanations", "first", 1000),
        ("predictions", "first", 1000),
    ]


def test_k_zero_writes_none_and_clears_the_window_and_k_above_the_features_keeps_all(
    models: Models,
) -> None:
    models.score("xgboost", k=3)
    written = models.score("xgboost", k=0)
    assert written.explained == 0 and written.rows == 1000
    assert models.frame(f"SELECT count(*) AS n FROM synth.explanations WHERE {WINDOW}")["n"][0] == 0
    models.score("xgboost", k=50)
    stored = _stored(models)
    assert {len(t) for t in stored["top_contributions"]} == {5}  # every feature, ranked
    np.testing.assert_allclose(stored["other_contribution"], 0.0, atol=1e-12)


def test_top_k_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 9))
    for k in (1, 3, 9, 12):
        picked = top_k(values, k)
        expected = np.argsort(-np.abs(values), axis=1, kind="stable")[:, : min(k, 9)]
        np.testing.assert_array_equal(picked, expected)
