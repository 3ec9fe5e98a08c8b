"""`model_evaluation`: the candidate judged on the time-based test holdout, with its gates.

The gates are this asset's checks, shown red in the UI when they fail (ERROR severity for the
blocking ones). They are not Dagster-blocking: a rejected candidate is a decision, not a failed
run. `champion_model` reads the verdict and is the only step that acts on it (aliases, version
tags, the audit row); this asset only measures.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from mlflow.entities import Metric

from ml_assets import settings
from ml_assets.core.lineage import code_version
from ml_assets.core.matrix import model_matrix
from ml_assets.core.model import ModelRef
from ml_assets.core.predictor import current_champion, load_predictor, registered_ref
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import ident, render
from ml_assets.layers.evaluate.baseline import NaiveBaselines, fit_baselines
from ml_assets.layers.evaluate.explain import global_importance
from ml_assets.layers.evaluate.gates import gate_specs
from ml_assets.layers.evaluate.logic import Evaluation, evaluate_candidate
from ml_assets.layers.evaluate.record import ARTIFACT
from ml_assets.layers.evaluate.report import inline_markdown
from ml_assets.layers.evaluate.variability import expected_worst
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import Warehouse, warehouse_pool

SQL = Path(__file__).parent / "sql"


def test_split(warehouse: Warehouse, spec: DatasetSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The holdout rows, and their slice columns aligned with them."""
    sql = render(
        SQL / "test_split.sql",
        training_set=spec.names.table("training_set"),
        validated=spec.names.table("validated"),
        slice_columns=", ".join(f"v.{ident(c)} AS {ident('__slice_' + c)}" for c in spec.slices)
        or "NULL AS __no_slices",
    )
    with warehouse.get_connection() as conn:
        rows = conn.execute(sql).df()
    # Indexed like the rows: a spec without slices still gets a frame of the holdout's length.
    slices = pd.DataFrame(
        {c: rows[f"__slice_{c}"].astype(str) for c in spec.slices}, index=rows.index
    )
    return rows, slices


def train_baselines(warehouse: Warehouse, spec: DatasetSpec) -> NaiveBaselines:
    """The naive baselines, fitted on the training set's train split."""
    sql = render(SQL / "train_label_stats.sql", training_set=spec.names.table("training_set"))
    with warehouse.get_connection() as conn:
        stats = conn.execute(sql).fetchall()
    return fit_baselines(spec.label.kind, [(int(d), int(n), float(m)) for d, n, m in stats])


def validation_label_rate(warehouse: Warehouse, spec: DatasetSpec) -> float | None:
    """The validation split's label mean: what a calibrator (fitted there) was calibrated to."""
    sql = f"SELECT avg(_label) FROM {spec.names.table('training_set')} WHERE _split = 'validation'"
    with warehouse.get_connection() as conn:
        (rate,) = conn.execute(sql).fetchone()
    return None if rate is None else float(rate)


def holdout_metrics(ev: Evaluation) -> dict[str, float]:
    """What the candidate's MLflow run gets as metrics: holdout values, skills, baselines."""
    out = {f"holdout_{k}": v for k, v in ev.metrics.values.items()}
    for s in ev.baselines.skills:
        out[f"holdout_{s.name}"] = s.skill
        out.update({f"holdout_baseline_{n}_{s.metric}": v for n, v in s.baselines.items()})
    if ev.metrics.threshold is not None:
        out["holdout_decision_threshold"] = ev.metrics.threshold
    return {k: float(v) for k, v in out.items() if v == v}  # undefined (NaN): not logged


def log_holdout_metrics(tracking: MlflowTracking, run_id: str, ev: Evaluation) -> None:
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in holdout_metrics(ev).items()]
    tracking.client().log_batch(run_id, metrics=metrics)


def evaluation_metadata(ev: Evaluation, ref: ModelRef, tracking: MlflowTracking) -> dict:
    primary = ev.comparison.metric
    skills = {
        s.name: dg.MetadataValue.float(float(s.skill))
        for s in ev.baselines.skills
        if s.skill == s.skill
    }
    served = (
        {}
        if ev.metrics.threshold is None
        else {
            "decision_threshold": dg.MetadataValue.float(float(ev.metrics.threshold)),
            "calibration": dg.MetadataValue.text(ev.calibration),
        }
    )
    return {
        **skills,
        **served,
        "baselines": dg.MetadataValue.json(ev.baselines.to_json()),
        "model_version": dg.MetadataValue.text(ref.version),
        "mlflow_run_id": dg.MetadataValue.text(ref.run_id),
        "mlflow_model": dg.MetadataValue.url(tracking.model_url(ref.registered_name, ref.version)),
        "data_version": dg.MetadataValue.text(ref.data_version),
        "holdout_rows": dg.MetadataValue.int(ev.metrics.rows),
        "holdout_window": dg.MetadataValue.text("..".join(ev.holdout)),
        "expected_worst_trailing": dg.MetadataValue.float(ev.expected_trailing),
        primary: dg.MetadataValue.float(float(ev.metrics[primary])),
        "metrics": dg.MetadataValue.json(ev.metrics.to_json()),
        "champion_version": dg.MetadataValue.text(ev.champion_version or "none"),
        "deltas_vs_champion": dg.MetadataValue.json(
            {k: (None if v != v else v) for k, v in ev.comparison.deltas.items()}
        ),
        "worst_slice_gap": dg.MetadataValue.float(float(ev.slices.gap or 0.0)),
        "slices": dg.MetadataValue.json(ev.slices.records()),
        "importance": dg.MetadataValue.json(dict(list(ev.importance.items())[:15])),
        "verdict": dg.MetadataValue.text(ev.verdict.reason),
        "report": dg.MetadataValue.path(str(ev.report))
        if ev.report
        else dg.MetadataValue.text("-"),
        "plots": dg.MetadataValue.md(inline_markdown(ev.plots)),
    }


def build_evaluate_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    evaluation = spec.evaluation
    key = spec.names.key("model_evaluation")

    @dg.asset(
        key=key,
        ins={"model_candidate": dg.AssetIn(spec.names.key("model_candidate"))},
        group_name=spec.name,
        kinds={"mlflow", "duckdb"},
        code_version=code_version(spec, "evaluate"),
        description=(
            "The candidate scored on the test holdout: metrics at its stored threshold, skill "
            "against naive baselines, slices, champion deltas, explanations and plots; its "
            "checks are the promotion gates."
        ),
        check_specs=[
            dg.AssetCheckSpec(g.name, asset=key, description=g.description)
            for g in gate_specs(evaluation)
        ],
        pool=warehouse_pool(),
    )
    def model_evaluation(
        model_candidate: ModelRef, warehouse: Warehouse, mlflow: MlflowTracking
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        ref = model_candidate
        rows, slices = test_split(warehouse, spec)
        if rows.empty:
            raise ValueError(f"{spec.name}: the training set has no test rows to evaluate on")
        predictor = load_predictor(ref, mlflow)
        y_true = rows["_label"].to_numpy(dtype=float)
        # Calibrated when the version stores a calibration: the gates judge what it serves.
        y_score = predictor.predict(rows)
        importance = global_importance(
            predictor.model, ref.family, model_matrix(rows, predictor.schema)
        )
        champion_version = current_champion(mlflow, ref.registered_name)
        champion_scores: np.ndarray | None = None
        champion_threshold: float | None = None
        if champion_version is not None and champion_version != ref.version:
            champion = load_predictor(
                registered_ref(mlflow, ref.registered_name, version=champion_version), mlflow
            )
            champion_scores = champion.predict(rows)
            champion_threshold = champion.threshold
        else:
            champion_version = None
        days = rows["_partition_date"]
        ev = evaluate_candidate(
            evaluation,
            ref.task,
            slices,
            y_true,
            y_score,
            spec.slices,
            importance,
            baselines=train_baselines(warehouse, spec),
            weekdays=(rows["_event_time"].dt.dayofweek + 1).to_numpy(),
            threshold=predictor.threshold,
            calibration=predictor.calibration.method if predictor.calibration else "none",
            calibrated_label_rate=validation_label_rate(warehouse, spec),
            champion_scores=champion_scores,
            champion_version=champion_version,
            champion_threshold=champion_threshold,
            folder=settings.reports_dir() / spec.name / "evaluation" / f"v{ref.version}",
            title=f"{spec.name}: evaluation of {ref.registered_name} v{ref.version}",
            holdout=(str(days.min().date()), str(days.max().date())),
            expected_trailing=expected_worst(
                y_true,
                y_score,
                days.to_numpy(),
                task=ref.task,
                metric=evaluation.metric,
                threshold=0.5 if predictor.threshold is None else predictor.threshold,
                window_days=spec.monitoring.performance_window_days,
                quantile=spec.monitoring.degradation_quantile,
                seed=spec.training.seed,
            ),
        )
        # Kept with the version, so its card can be rebuilt after a rollback.
        mlflow.client().log_dict(ref.run_id, ev.record().to_json(), ARTIFACT)
        log_holdout_metrics(mlflow, ref.run_id, ev)
        yield dg.Output(ev, metadata=evaluation_metadata(ev, ref, mlflow))
        for g in ev.gates:
            yield dg.AssetCheckResult(
                check_name=g.name,
                passed=g.passed,
                severity=dg.AssetCheckSeverity.ERROR if g.blocking else dg.AssetCheckSeverity.WARN,
                metadata={
                    "observed": dg.MetadataValue.float(float(g.observed))
                    if g.observed is not None and g.observed == g.observed
                    else dg.MetadataValue.text("n/a"),
                    "expected": dg.MetadataValue.text(g.expected),
                    "detail": dg.MetadataValue.text(g.detail),
                    "blocks_promotion": dg.MetadataValue.bool(g.blocking),
                },
            )

    return [model_evaluation]
