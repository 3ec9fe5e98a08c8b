"""`training_set` and `model_candidate`: a labelled window split by time, and the model on it."""

import datetime as dt
import time

import dagster as dg
from pydantic import Field

from ml_assets.core.jsonable import json_ready
from ml_assets.core.lineage import code_version
from ml_assets.core.matrix import declared_schema
from ml_assets.core.model import ModelRef
from ml_assets.core.partitions import window_metadata
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import REUSE_REGISTERED_TAG, trigger_of
from ml_assets.layers.train.dataset import (
    TrainingSetInfo,
    data_version,
    plan_window,
    read_training_set,
    require_features,
    resolve_as_of,
    write_training_set,
)
from ml_assets.layers.train.tracking import log_candidate
from ml_assets.layers.train.training import Candidate, train_candidate
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


class TrainingSetConfig(dg.Config):
    as_of: str | None = Field(
        None,
        description=(
            "Last day of the window (YYYY-MM-DD). Default: the newest features day whose labels "
            "are all known at the data frontier (the earlier of now and the end of the newest "
            "features day)."
        ),
    )


def training_set_metadata(info: TrainingSetInfo) -> dict[str, dg.MetadataValue]:
    label = "label_rate" if info.task == "binary" else "label_mean"
    bounds = info.window.bounds()
    per_split = {
        s.split: {
            "first_day": bounds[s.split][0].isoformat(),
            "last_day": bounds[s.split][1].isoformat(),
            "days_with_rows": s.days,
            "rows": s.rows,
            "excluded_null_label_rows": s.null_label_rows,
            label: s.label_mean,
        }
        for s in info.splits
    }
    return {
        **window_metadata(info.window.start, info.window.end),
        "days_with_rows": dg.MetadataValue.int(sum(s.days for s in info.splits)),
        "as_of": dg.MetadataValue.text(info.as_of.isoformat()),
        "as_of_rule": dg.MetadataValue.text(info.as_of_rule),
        "data_version": dg.MetadataValue.text(info.data_version),
        "dagster/row_count": dg.MetadataValue.int(sum(s.rows for s in info.splits)),
        "excluded_null_label_rows": dg.MetadataValue.int(info.excluded_null_label_rows),
        **{f"rows_{s.split}": dg.MetadataValue.int(s.rows) for s in info.splits},
        **{
            f"{label}_{s.split}": dg.MetadataValue.float(float(s.label_mean or 0.0))
            for s in info.splits
        },
        "splits": dg.MetadataValue.json(per_split),
    }


def calibration_metadata(candidate: Candidate) -> dict[str, dg.MetadataValue]:
    """A binary candidate's calibration and threshold, as the version stores them."""
    fit, decision = candidate.calibration, candidate.threshold
    if fit is None or decision is None:
        return {}
    return {
        "calibration": dg.MetadataValue.text(fit.method),
        "calibration_note": dg.MetadataValue.text(fit.note),
        "validation_log_loss_before_calibration": dg.MetadataValue.float(fit.raw_log_loss),
        "validation_log_loss_after_calibration": dg.MetadataValue.float(fit.log_loss),
        "decision_threshold": dg.MetadataValue.float(decision.value),
        "threshold_policy": dg.MetadataValue.json(json_ready(decision.to_dict())),
    }


def build_train_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    """`<ds>/training_set` and `<ds>/model_candidate`; the spec needs `features` and `training`."""
    training = spec.training
    declared = declared_schema(spec.features)
    version = code_version(spec, "train")
    task = spec.label.kind

    @dg.asset(
        key=spec.names.key("training_set"),
        deps=[spec.names.key("features")],
        group_name=spec.name,
        kinds={"duckdb"},
        code_version=version,
        pool=warehouse_pool(),
        description=(
            f"Labelled feature rows of the newest {training.window_days} days of `{spec.name}`, "
            f"split by time: the last {training.split.test_days} days test, the "
            f"{training.split.validation_days} before validation, the rest train."
        ),
        metadata={"dagster/table_name": spec.names.table_name("training_set")},
    )
    def training_set(
        context: dg.AssetExecutionContext, config: TrainingSetConfig, warehouse: Warehouse
    ) -> dg.Output[TrainingSetInfo]:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with warehouse.get_connection() as conn:
            require_features(conn, spec)
            as_of, rule = resolve_as_of(conn, spec, config.as_of, now)
            window = plan_window(as_of, training, spec)
            stats, digest = write_training_set(conn, spec, window)
        info = TrainingSetInfo(
            dataset=spec.name,
            table=spec.names.table_name("training_set"),
            task=task,
            as_of=as_of,
            as_of_rule=rule,
            window=window,
            data_version=digest,
            splits=stats,
        )
        context.log.info(
            f"training set {window.start}..{window.end}: "
            + ", ".join(f"{s.split} {s.rows}" for s in stats)
            + f"; {info.excluded_null_label_rows} NULL-label rows excluded"
        )
        return dg.Output(info, metadata=training_set_metadata(info))

    @dg.asset(
        key=spec.names.key("model_candidate"),
        ins={"training_set": dg.AssetIn(spec.names.key("training_set"))},
        group_name=spec.name,
        kinds={"mlflow", "xgboost", "scikitlearn"},
        code_version=version,
        pool=warehouse_pool(),
        description=(
            f"The best of {', '.join(training.models)} on the validation split of "
            f"`{spec.name}/training_set`, registered in MLflow with the `challenger` alias."
        ),
    )
    def model_candidate(
        context: dg.AssetExecutionContext,
        training_set: TrainingSetInfo,
        warehouse: Warehouse,
        mlflow: MlflowTracking,
    ) -> dg.Output[ModelRef]:
        with warehouse.get_connection() as conn:
            current = data_version(conn, spec)
            if current != training_set.data_version:
                raise ValueError(
                    f"{training_set.table} now has data version {current}, not "
                    f"{training_set.data_version} as materialized: re-materialize "
                    f"{spec.name}/training_set before training"
                )
            rows = read_training_set(conn, spec)
        started = time.perf_counter()
        candidate = train_candidate(rows, declared, task, training, spec.evaluation.threshold)
        trained = time.perf_counter() - started
        logged = log_candidate(
            mlflow,
            spec,
            training_set,
            candidate,
            rows,
            source=str(warehouse.database),
            reuse_registered=context.run.tags.get(REUSE_REGISTERED_TAG) == "true",
            tags={
                "dagster_run_id": context.run.run_id,
                "dagster_asset_key": context.asset_key.to_user_string(),
                "code_version": version,
                # Why this training ran (e.g. `drift_report:severe_drift@2013-07-31`): set by
                # the retrain sensor, so a retrain traces back to the check that caused it.
                "trigger": trigger_of(context.run.tags),
            },
        )
        ref = logged.ref
        validation = {f: r.validation_metrics for f, r in candidate.results.items()}
        return dg.Output(
            ref,
            metadata={
                **window_metadata(training_set.window.start, training_set.window.end),
                "data_version": dg.MetadataValue.text(ref.data_version),
                "chosen_family": dg.MetadataValue.text(ref.family),
                "primary_metric": dg.MetadataValue.text(candidate.primary_metric),
                **{
                    f"{family}_validation_{name}": dg.MetadataValue.float(value)
                    for family, values in validation.items()
                    for name, value in values.items()
                },
                "validation_metrics": dg.MetadataValue.json(validation),
                "params": dg.MetadataValue.json(candidate.best.params),
                "mlflow_experiment": dg.MetadataValue.text(spec.names.experiment()),
                "mlflow_run_id": dg.MetadataValue.text(logged.run_id),
                "mlflow_run_url": dg.MetadataValue.url(
                    mlflow.run_url(logged.experiment_id, logged.run_id)
                ),
                "model_run_id": dg.MetadataValue.text(ref.run_id),
                "registered_model": dg.MetadataValue.text(ref.registered_name),
                "model_version": dg.MetadataValue.text(ref.version),
                "model_uri": dg.MetadataValue.text(ref.uri),
                "model_url": dg.MetadataValue.url(
                    mlflow.model_url(ref.registered_name, ref.version)
                ),
                "features": dg.MetadataValue.json(list(ref.features)),
                "train_seconds": dg.MetadataValue.float(round(trained, 2)),
                **calibration_metadata(candidate),
            },
        )

    return [training_set, model_candidate]
