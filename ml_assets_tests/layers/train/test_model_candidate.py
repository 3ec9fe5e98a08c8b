"""`model_candidate` end to end: real DuckDB, real Dagster runs, a real MLflow sqlite store.

One module-scoped store and one binary training (run twice, for reproducibility) are shared by
the tests that inspect them, since each materialization costs seconds.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest

from ml_assets.core.model import ModelRef
from ml_assets.core.predictor import CHALLENGER, load_predictor, registered_ref
from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.checks import build_train_checks
from ml_assets.layers.train.families import metrics
from ml_assets.layers.train.tracking import PREDICTIONS_SAMPLE
from ml_assets_tests.layers.train.conftest import Store, load_features, make_store, write_spec


@dataclass
class Trained:
    spec: object
    first: dg.ExecuteInProcessResult
    second: dg.ExecuteInProcessResult

    def ref(self, result=None) -> ModelRef:
        return (result or self.first).output_for_node("synth__model_candidate")

    def meta(self, result=None) -> dict:
        events = (result or self.first).get_asset_materialization_events()
        (event,) = [e for e in events if e.asset_key == self.spec.names.key("model_candidate")]
        return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return make_store(tmp_path_factory.mktemp("train_store"))


@pytest.fixture(scope="module")
def trained(store: Store, tmp_path_factory) -> Iterator[Trained]:
    spec = write_spec(tmp_path_factory.mktemp("specs"), "synth")
    load_features(store, "synth", "binary", days=40, rows_per_day=250)
    assets = [*build_train_assets(spec), *build_train_checks(spec)]
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize(assets, instance=instance, resources=store.resources())
        # Same window, same seed; the training set output is read back from the IO manager.
        second = dg.materialize(
            assets,
            instance=instance,
            resources=store.resources(),
            selection=[spec.names.key("model_candidate")],
        )
        yield Trained(spec, first, second)


def test_candidate_output_and_metadata(trained: Trained, store: Store) -> None:
    ref, meta = trained.ref(), trained.meta()
    training_meta = {
        k: v.value
        for e in trained.first.get_asset_materialization_events()
        if e.asset_key.path[-1] == "training_set"
        for k, v in e.materialization.metadata.items()
    }
    assert isinstance(ref, ModelRef)
    assert ref.registered_name == "synth_model" == meta["registered_model"]
    assert ref.version == meta["model_version"] == "1"
    assert ref.task == "binary" and ref.features == ("load", "speed", "hour", "region", "size")
    assert ref.categorical == ("region", "size")
    assert ref.data_version == meta["data_version"] == training_meta["data_version"]
    assert ref.train_window == (training_meta["partition_start"], training_meta["partition_end"])
    # The signal has a step, a daily cycle and an interaction, which a linear model cannot fit.
    xgb, lin = meta["xgboost_validation_roc_auc"], meta["linear_validation_roc_auc"]
    assert xgb > lin and xgb > 0.75
    assert ref.family == meta["chosen_family"] == "xgboost"
    assert meta["validation_metrics"]["linear"]["log_loss"] > 0
    assert meta["mlflow_run_url"].startswith(store.tracking.ui_url)
    assert meta["mlflow_run_id"] in meta["mlflow_run_url"]
    assert meta["model_url"].endswith("/models/synth_model/versions/1")


def test_same_window_and_seed_reproduce_the_validation_metrics(trained: Trained) -> None:
    first, second = trained.meta(), trained.meta(trained.second)
    assert first["validation_metrics"] == second["validation_metrics"]
    assert first["params"] == second["params"]
    assert trained.ref(trained.second).version == "2"  # a new version each materialization


def test_mlflow_runs_link_back_to_dagster(trained: Trained, store: Store) -> None:
    client = store.tracking.client()
    meta, ref = trained.meta(), trained.ref()
    parent = client.get_run(meta["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["dagster_run_id"] == trained.first.run_id
    assert tags["dagster_asset_key"] == "synth/model_candidate"
    assert tags["dataset"] == "synth" and tags["data_version"] == ref.data_version
    assert tags["train_window"] == f"{ref.train_window[0]}..{ref.train_window[1]}"
    assert tags["partition_count"] == "30" and len(tags["code_version"]) == 16
    assert parent.data.params["search_budget"] == "3"
    assert parent.data.params["window_end"] == ref.train_window[1]
    assert parent.data.metrics["validation_roc_auc"] == meta["xgboost_validation_roc_auc"]
    (dataset_input,) = parent.inputs.dataset_inputs
    assert dataset_input.dataset.name == "synth.training_set"
    assert dataset_input.dataset.digest == ref.data_version
    assert dataset_input.dataset.source == json.dumps({"uri": store.warehouse.database})
    columns = [c["name"] for c in json.loads(dataset_input.dataset.schema)["mlflow_colspec"]]
    assert columns == [*ref.features, "_label", "_split"]
    input_tags = {t.key: t.value for t in dataset_input.tags}
    assert input_tags["mlflow.data.context"] == "training"
    assert int(input_tags["rows_validation"]) > 0
    schema = mlflow.artifacts.load_dict(f"runs:/{parent.info.run_id}/feature_schema.json")
    assert schema["features"] == list(ref.features)
    assert schema["levels"]["size"] == ["L", "M", "S"]

    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.info.run_name for c in children) == ["linear", "xgboost"]
    for child in children:
        family = child.info.run_name
        assert child.data.tags["dagster_run_id"] == trained.first.run_id
        assert child.data.params["family"] == family
        assert child.data.metrics["validation_roc_auc"] == meta[f"{family}_validation_roc_auc"]
        assert "train_roc_auc" in child.data.metrics and "validation_log_loss" in child.data.metrics
        history = client.get_metric_history(child.info.run_id, "trial_validation_roc_auc")
        assert len(history) == 3  # budget 3, random search
        assert max(m.value for m in history) == child.data.metrics["validation_roc_auc"]
    assert ref.run_id == next(c.info.run_id for c in children if c.info.run_name == ref.family)


def test_registered_version_has_alias_tags_and_xgboost_json(trained: Trained, store: Store) -> None:
    client = store.tracking.client()
    ref, latest = trained.ref(), trained.ref(trained.second)
    # The alias follows the newest candidate; the earlier version stays registered.
    assert (
        str(client.get_model_version_by_alias("synth_model", CHALLENGER).version) == latest.version
    )
    version = client.get_model_version("synth_model", ref.version)
    assert version.run_id == ref.run_id
    assert version.tags["family"] == "xgboost" and version.tags["task"] == "binary"
    assert version.tags["data_version"] == ref.data_version
    assert json.loads(version.tags["features"]) == list(ref.features)
    assert version.tags["dagster_run_id"] == trained.first.run_id

    files = Path(mlflow.artifacts.download_artifacts(ref.uri, dst_path=str(store.root / "v1")))
    model_file = files / "model.json"
    assert model_file.exists() and not list(files.glob("*.pkl"))
    booster = json.loads(model_file.read_text())  # XGBoost's own JSON, not a pickle
    assert "learner" in booster and booster["learner"]["gradient_booster"]["name"] == "gbtree"
    assert "xgboost" in (files / "MLmodel").read_text()
    # The registry alone gives back the same reference the asset returned.
    assert registered_ref(store.tracking, "synth_model", alias=CHALLENGER) == latest
    assert registered_ref(store.tracking, "synth_model", version="1") == ref


def test_load_predictor_reproduces_training_predictions(trained: Trained, store: Store) -> None:
    ref = trained.ref()
    predictor = load_predictor(ref, store.tracking)
    sample_path = mlflow.artifacts.download_artifacts(
        run_id=ref.run_id, artifact_path=PREDICTIONS_SAMPLE, dst_path=str(store.root / "sample")
    )
    sample = pd.read_parquet(sample_path)
    valid = store.frame(
        "SELECT * FROM synth.training_set WHERE _split = 'validation' "
        "ORDER BY _partition_date, _event_time, _key"
    )
    rows = valid.set_index("_key").loc[sample["_key"]].reset_index()
    np.testing.assert_array_equal(predictor.predict(rows), sample["prediction"].to_numpy())
    # The whole validation split scores to the logged metric.
    scored = metrics("binary", valid["_label"].to_numpy(), predictor.predict(valid))
    assert scored["roc_auc"] == pytest.approx(
        trained.meta()["xgboost_validation_roc_auc"], abs=1e-12
    )

    # Unseen categories are treated as missing, not a crash; column order does not matter.
    odd = rows.head(3)[list(reversed(ref.features))].copy()
    missing = odd.assign(region=None)
    unseen = odd.assign(region="atlantis")
    np.testing.assert_array_equal(predictor.predict(unseen), predictor.predict(missing))
    assert np.isfinite(predictor.predict(unseen)).all()


def test_regression_end_to_end_with_the_linear_pipeline(store: Store, tmp_path_factory) -> None:
    spec = write_spec(
        tmp_path_factory.mktemp("reg_specs"), "synthreg", kind="regression", models="[linear]"
    )
    load_features(store, "synthreg", "regression", days=36, rows_per_day=120)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [*build_train_assets(spec), *build_train_checks(spec)],
            instance=instance,
            resources=store.resources(),
        )
    assert result.success
    by_key = {e.asset_key.path[-1]: e for e in result.get_asset_materialization_events()}
    training = {k: v.value for k, v in by_key["training_set"].materialization.metadata.items()}
    meta = {k: v.value for k, v in by_key["model_candidate"].materialization.metadata.items()}
    assert "label_mean_train" in training and "label_rate_train" not in training
    ref: ModelRef = result.output_for_node("synthreg__model_candidate")
    assert (ref.task, ref.family, meta["primary_metric"]) == ("regression", "linear", "rmse")
    # Noise has sd 1: a model that learned the signal lands near it, far below the label's sd.
    valid = store.frame("SELECT * FROM synthreg.training_set WHERE _split = 'validation'")
    assert 0.8 < meta["linear_validation_rmse"] < 0.6 * valid["_label"].std()
    assert meta["linear_validation_mae"] < meta["linear_validation_rmse"]
    predictor = load_predictor(ref, store.tracking)
    scored = metrics("regression", valid["_label"].to_numpy(), predictor.predict(valid))
    assert scored["rmse"] == pytest.approx(meta["linear_validation_rmse"], abs=1e-12)
    assert scored["mae"] == pytest.approx(meta["linear_validation_mae"], abs=1e-12)
    client = store.tracking.client()
    assert (
        str(client.get_model_version_by_alias("synthreg_model", CHALLENGER).version) == ref.version
    )
    files = Path(mlflow.artifacts.download_artifacts(ref.uri, dst_path=str(store.root / "reg")))
    assert "sklearn" in (files / "MLmodel").read_text() and (files / "model.skops").exists()
