"""Log a trained candidate to MLflow and register it as the dataset model's `challenger`.

Layout, the same for every dataset: experiment `ml_assets/<dataset>`; one parent run per
materialization of `<dataset>/model_candidate`; one nested child run per model family holding
that family's search (trials as step-wise metrics and a JSON table; under Optuna, pruned trials
marked as such and the sampler and pruner as tags), its best parameters and metrics, and its
model. Only the winning family's model is registered; a binary winner's model carries its
calibration and decision threshold in its metadata (`core/scores.py`), and its run the validation
log loss before and after calibration. Every run carries tags that lead back to the Dagster run
and asset that made it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import pandas as pd
import sklearn
import xgboost
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import infer_signature

from ml_assets.core.faults import fault_point
from ml_assets.core.jsonable import json_ready
from ml_assets.core.model import ModelRef
from ml_assets.core.predictor import (
    CALIBRATION,
    CHALLENGER,
    DECISION_THRESHOLD,
    FEATURE_SCHEMA,
)
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.train.dataset import TrainingSetInfo
from ml_assets.layers.train.search import FamilyResult
from ml_assets.layers.train.training import Candidate
from ml_assets.resources.mlflow_tracking import MlflowTracking

_LOG = logging.getLogger(__name__)

MODEL_NAME = "model"  # name of the logged model inside its run
PREDICTIONS_SAMPLE = "validation_predictions.parquet"
SAMPLE_ROWS = 2000
# MLflow caps tag values (5000 characters for model version tags); longer lists point to the run.
MAX_TAG = 4000
SKOPS_TRUSTED_TYPES = ["numpy.dtype"]
# Model version tag: what the version was trained from (training set digest + training code).
LINEAGE_KEY = "lineage_key"


def lineage_key(data_version: str, code_version: str) -> str:
    """The identity of a training: the same training set trained by the same code (seed and
    search pinned by the spec, which the code version covers) is the same model. A training that
    a crash cut short after registering is redone with this key, and finds its version."""
    return hashlib.sha256(f"{data_version}|{code_version}".encode()).hexdigest()[:16]


def registered_with_lineage(tracking: MlflowTracking, name: str, key: str) -> ModelVersion | None:
    """The version of `name` already registered from this very training, if any."""
    for mv in tracking.client().search_model_versions(f"name = '{name}'"):
        if mv.tags.get(LINEAGE_KEY) == key:
            return mv
    return None


def registered_model_name(spec: DatasetSpec) -> str:
    return spec.training.registered_model_name or f"{spec.name}_model"


@dataclass(frozen=True)
class LoggedCandidate:
    ref: ModelRef
    experiment_id: str
    run_id: str  # the parent run of this materialization
    family_runs: Mapping[str, str]


def _tag(value: str, fallback: str) -> str:
    return value if len(value) <= MAX_TAG else fallback


def _pip_requirements(family: str) -> list[str]:
    # Pinned from the running environment; also spares MLflow from inferring them by loading the
    # model in a subprocess (seconds per model).
    base = [f"pandas=={pd.__version__}", f"numpy=={np.__version__}"]
    if family == "xgboost":
        return [f"xgboost=={xgboost.__version__}", *base]
    return [f"scikit-learn=={sklearn.__version__}", *base]


def _log_model(family: str, result: FamilyResult, signature, metadata: dict):
    common = {
        "name": MODEL_NAME,
        "signature": signature,
        "metadata": metadata,
        "pip_requirements": _pip_requirements(family),
    }
    if family == "xgboost":
        # XGBoost's own JSON format: portable across versions and readable, never a pickle.
        return mlflow.xgboost.log_model(result.model, model_format="json", **common)
    # mlflow.sklearn defaults to skops outside Databricks: a safe, non-pickle format. The fitted
    # imputers record numpy dtypes, plain data that skops lists as untrusted by default.
    return mlflow.sklearn.log_model(result.model, skops_trusted_types=SKOPS_TRUSTED_TYPES, **common)


def _prefixed(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}{k}": v for k, v in values.items()}


def _predictions_sample(keys: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    # A fixed, evenly spaced sample: enough to prove a loaded model predicts what training saw.
    idx = np.unique(np.linspace(0, len(keys) - 1, min(len(keys), SAMPLE_ROWS)).astype(int))
    return pd.DataFrame({"_key": keys[idx], "prediction": pred[idx]})


def _dataset_reference(
    rows: pd.DataFrame, spec: DatasetSpec, info: TrainingSetInfo, source: str
) -> MetaDataset:
    """The training set as MLflow sees it: where it lives, its schema and our data version.

    A metadata-only dataset: the rows stay in DuckDB (MLflow's pandas dataset would also profile
    every row, seconds on the flights window, for a row count we log as a tag anyway).
    """
    with warnings.catch_warnings():
        # MLflow registers its local-file source class twice and warns that a path is
        # ambiguous between the two identical classes; either one is right.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        resolved = resolve_dataset_source(source)
    return MetaDataset(
        resolved,
        name=spec.names.table_name("training_set"),
        digest=info.data_version,
        schema=infer_signature(rows.head(1000)).inputs,
    )


def version_metadata(candidate: Candidate) -> dict[str, object]:
    """What the registered (winning) model adds to its metadata: calibration and threshold."""
    if candidate.task != "binary" or candidate.threshold is None:
        return {}
    fit = candidate.calibration
    calibration = None if fit is None or fit.calibration is None else fit.calibration
    return json_ready(
        {
            CALIBRATION: None if calibration is None else calibration.to_dict(),
            DECISION_THRESHOLD: candidate.threshold.to_dict(),
        }
    )


def calibration_metrics(candidate: Candidate, y_validation: np.ndarray) -> dict[str, float]:
    """Calibration and threshold as run metrics: which loss they were chosen on, and where."""
    if candidate.task != "binary" or candidate.threshold is None or candidate.calibration is None:
        return {}
    fit, decision = candidate.calibration, candidate.threshold
    out = {
        "calibration_validation_log_loss_before": fit.raw_log_loss,
        "calibration_validation_log_loss_after": fit.log_loss,
        **{f"calibration_cross_fitted_log_loss_{m}": v for m, v in fit.cross_fitted.items()},
        "decision_threshold": decision.value,
        **{f"validation_{k}_at_threshold": v for k, v in decision.validation.items()},
        **_prefixed("served_validation_", candidate.served_metrics(y_validation)),
    }
    return {k: float(v) for k, v in out.items() if v == v}  # undefined (NaN): not logged


def calibration_tags(candidate: Candidate) -> dict[str, str]:
    if candidate.task != "binary" or candidate.threshold is None or candidate.calibration is None:
        return {}
    decision = candidate.threshold
    policy = decision.policy + ("" if decision.target is None else f" {decision.target:g}")
    return {
        "calibration": candidate.calibration.method,
        "calibration_note": _tag(candidate.calibration.note, candidate.calibration.method),
        "decision_threshold": repr(decision.value),
        "threshold_policy": policy,
    }


def log_candidate(
    tracking: MlflowTracking,
    spec: DatasetSpec,
    info: TrainingSetInfo,
    candidate: Candidate,
    rows: pd.DataFrame,
    *,
    source: str,
    tags: Mapping[str, str],
    reuse_registered: bool = False,
) -> LoggedCandidate:
    """Log both families, register the winner and point the `challenger` alias at it.

    With `reuse_registered` (the replay's trainings, `REUSE_REGISTERED_TAG`), a version already
    registered from the same training set by the same code is the winner's version."""
    training = spec.training
    schema = candidate.schema
    window = (info.window.start.isoformat(), info.window.end.isoformat())
    run_tags = {
        **tags,
        "dataset": spec.name,
        "data_version": info.data_version,
        "train_window": f"{window[0]}..{window[1]}",
        "partition_count": str(info.window.days),
    }
    features_json = json.dumps(list(schema.features))
    dataset = _dataset_reference(rows[[*schema.features, "_label", "_split"]], spec, info, source)
    input_tags = {
        "window": run_tags["train_window"],
        "rows": str(sum(s.rows for s in info.splits)),
        "data_version": info.data_version,
        **{f"rows_{s.split}": str(s.rows) for s in info.splits},
    }
    feature_frame = rows.loc[rows["_split"] == "validation", list(schema.features)].head(200)
    metadata = {
        FEATURE_SCHEMA: schema.to_dict(),
        "task": candidate.task,
        "data_version": info.data_version,
    }
    y_validation = rows.loc[rows["_split"] == "validation", "_label"].to_numpy(dtype="float64")
    experiment = spec.names.experiment()
    family_runs: dict[str, str] = {}
    model_uris: dict[str, str] = {}
    with tracking.start_run(
        experiment, run_name=f"{spec.name}/model_candidate {window[0]}..{window[1]}", tags=run_tags
    ) as parent:
        mlflow.log_params(
            {
                "task": candidate.task,
                "as_of": info.as_of.isoformat(),
                "window_start": window[0],
                "window_end": window[1],
                "search_method": training.search.method,
                "search_budget": training.search.budget,
                "seed": training.seed,
                "families": ",".join(candidate.results),
                "n_features": len(schema.features),
                **{f"rows_{s.split}": s.rows for s in info.splits},
            }
        )
        mlflow.log_input(dataset, context="training", tags=input_tags)
        mlflow.log_dict(schema.to_dict(), "feature_schema.json")
        for family, result in candidate.results.items():
            with tracking.start_run(
                experiment, run_name=family, tags={**run_tags, "family": family}, nested=True
            ) as child:
                mlflow.log_params({"family": family, **result.params})
                chosen = family == candidate.chosen
                mlflow.log_metrics(
                    {
                        **_prefixed("train_", result.train_metrics),
                        **_prefixed("validation_", result.validation_metrics),
                        "search_seconds": result.seconds,
                        **(calibration_metrics(candidate, y_validation) if chosen else {}),
                    }
                )
                if chosen:
                    mlflow.set_tags(calibration_tags(candidate))
                mlflow.set_tags(result.search)
                for step, trial in enumerate(result.trials):
                    # A pruned trial has no final metrics: only its state is logged at its step.
                    mlflow.log_metrics(
                        {
                            **_prefixed("trial_validation_", trial.validation),
                            "trial_pruned": float(trial.state == "pruned"),
                        },
                        step=step,
                    )
                mlflow.log_metrics(
                    {
                        "search_trials": len(result.trials),
                        "search_trials_pruned": sum(t.state == "pruned" for t in result.trials),
                    }
                )
                mlflow.log_dict([t.to_dict() for t in result.trials], "search_trials.json")
                mlflow.log_input(dataset, context="training", tags=input_tags)
                signature = infer_signature(
                    feature_frame, result.validation_pred[: len(feature_frame)]
                )
                served = version_metadata(candidate) if chosen else {}
                logged = _log_model(
                    family, result, signature, {**metadata, "family": family, **served}
                )
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / PREDICTIONS_SAMPLE
                    # What the logged model predicts: calibrated for the registered winner.
                    pred = candidate.served_pred if chosen else result.validation_pred
                    _predictions_sample(candidate.validation_keys, pred).to_parquet(
                        path, index=False
                    )
                    mlflow.log_artifact(str(path))
                family_runs[family] = child.info.run_id
                model_uris[family] = logged.model_uri
        best = candidate.best
        mlflow.log_metrics(
            {
                **_prefixed("train_", best.train_metrics),
                **_prefixed("validation_", best.validation_metrics),
                **{
                    f"{family}_validation_{k}": v
                    for family, r in candidate.results.items()
                    for k, v in r.validation_metrics.items()
                },
                **calibration_metrics(candidate, y_validation),
            }
        )
        name = registered_model_name(spec)
        fault_point("training.model_logged")
        key = lineage_key(info.data_version, tags.get("code_version", ""))
        reused = registered_with_lineage(tracking, name, key) if reuse_registered else None
        if reused is not None:
            # Registering again would give the same model a second version (and a crash-cut
            # training, redone, a different version number than an uninterrupted one).
            _LOG.info("%s v%s was already trained from this training set", name, reused.version)
            mlflow.set_tag("reused_model_version", reused.version)
        version = reused or _register(
            model_uris[candidate.chosen],
            name,
            tags={
                "family": candidate.chosen,
                "task": candidate.task,
                "data_version": info.data_version,
                "features": _tag(features_json, "see feature_schema.json in the run"),
                "dagster_run_id": tags.get("dagster_run_id", ""),
                "dataset": spec.name,
                "train_window": run_tags["train_window"],
                "mlflow_parent_run_id": parent.info.run_id,
                LINEAGE_KEY: key,
                **calibration_tags(candidate),
            },
        )
        tracking.client().set_registered_model_alias(name, CHALLENGER, version.version)
        fault_point("training.registered")
        mlflow.set_tags(
            {
                "chosen_family": candidate.chosen,
                "registered_model": name,
                "model_version": version.version,
                **calibration_tags(candidate),
            }
        )
        ref = ModelRef(
            registered_name=name,
            version=str(version.version),
            run_id=reused.run_id if reused is not None else family_runs[candidate.chosen],
            family=candidate.chosen,
            task=candidate.task,
            features=schema.features,
            categorical=schema.categorical,
            data_version=info.data_version,
            train_window=window,
        )
        return LoggedCandidate(ref, parent.info.experiment_id, parent.info.run_id, family_runs)


def _register(model_uri: str, name: str, tags: Mapping[str, str]) -> ModelVersion:
    # MLflow prints "Successfully registered model ..." to stderr: the debug log gets it.
    with contextlib.redirect_stderr(io.StringIO()) as said:
        version = mlflow.register_model(model_uri, name, tags=dict(tags))
    if said.getvalue().strip():
        _LOG.debug("mlflow: %s", said.getvalue().strip())
    return version
