"""`champion_model` and `model_card`: the gated move of the `champion` alias, and its card.

`champion_model` runs only when every blocking gate on `model_evaluation` passed (Dagster skips it
otherwise), so the alias can only move to a candidate that cleared them. The same asset performs
rollbacks (config `rollback_to`), so its output always names the version the alias points at and
everything downstream (scoring, monitoring, the card) follows it.
"""

import datetime as dt
import pickle
from pathlib import Path

import dagster as dg
from pydantic import Field

from ml_assets import settings
from ml_assets.automation.retrain import TRIGGER_TAG
from ml_assets.layers.evaluate.assets import model_evaluation_key
from ml_assets.layers.evaluate.logic import Evaluation
from ml_assets.layers.promote.audit import decisions
from ml_assets.layers.promote.card import model_links, render_model_card
from ml_assets.layers.promote.champion import Champion, metrics_json
from ml_assets.layers.promote.decide import decide, rollback_and_record
from ml_assets.layers.sections import evaluation_of, monitoring_of
from ml_assets.layers.train.assets import model_candidate_key
from ml_assets.layers.train.predictor import registered_ref
from ml_assets.lineage import code_version
from ml_assets.models import ModelRef
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import WAREHOUSE_POOL, Warehouse
from ml_assets.specs import DatasetSpec


class ChampionConfig(dg.Config):
    rollback_to: str | None = Field(
        None,
        description="Roll `champion` back to this version ('previous' = the one it replaced) "
        "instead of promoting the evaluated candidate.",
    )
    reason: str = Field("", description="Why (recorded in the audit trail).")


def champion_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.name, "champion_model"])


def model_card_key(spec: DatasetSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.name, "model_card"])


def evaluation_path(spec: DatasetSpec, version: str) -> Path:
    """Where a version's Evaluation is kept, so a rollback can rebuild that version's card."""
    return settings.reports_dir() / spec.name / "evaluation" / f"v{version}" / "evaluation.pkl"


def build_promote_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    metric = evaluation_of(spec).metric
    version = code_version(spec, Path(__file__).parent)
    max_age = dt.timedelta(days=monitoring_of(spec).champion_max_age_days)

    @dg.asset(
        key=champion_key(spec),
        ins={
            "model_evaluation": dg.AssetIn(model_evaluation_key(spec)),
            "model_candidate": dg.AssetIn(model_candidate_key(spec)),
        },
        group_name=spec.name,
        kinds={"mlflow"},
        code_version=version,
        pool=WAREHOUSE_POOL,
        # Wall-clock freshness shown in the UI; data-time staleness drives the retrain sensor.
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=max_age),
    )
    def champion_model(
        context: dg.AssetExecutionContext,
        config: ChampionConfig,
        model_evaluation: Evaluation,
        model_candidate: ModelRef,
        warehouse: Warehouse,
        mlflow: MlflowTracking,
    ) -> dg.Output[Champion]:
        """The model version the `champion` alias points at, and what it was judged on."""
        trigger = context.run.tags.get(TRIGGER_TAG, "manual")
        common = {
            "dataset": spec.name,
            "model_name": model_candidate.registered_name,
            "trigger": trigger,
            "code_version": version,
            "dagster_run_id": context.run_id,
        }
        with warehouse.get_connection() as conn:
            if config.rollback_to:
                target = None if config.rollback_to == "previous" else config.rollback_to
                decision = rollback_and_record(
                    mlflow,
                    conn,
                    to_version=target,
                    reason=config.reason or "manual rollback",
                    **common,
                )
                ref = registered_ref(
                    mlflow, model_candidate.registered_name, version=decision.new_champion_version
                )
                judged = [
                    d
                    for d in decisions(conn, spec.name)
                    if d.decision == "promoted" and d.candidate_version == ref.version
                ]
                metrics = dict(judged[-1].metrics) if judged else {}
            else:
                evaluation_path(spec, model_candidate.version).parent.mkdir(
                    parents=True, exist_ok=True
                )
                evaluation_path(spec, model_candidate.version).write_bytes(
                    pickle.dumps(model_evaluation)
                )
                decision = decide(
                    mlflow,
                    conn,
                    candidate_version=model_candidate.version,
                    gates=model_evaluation.gates,
                    metrics=model_evaluation.metrics,
                    **common,
                )
                if decision.decision != "promoted":
                    raise RuntimeError(
                        f"gates passed but the decision was {decision.decision}: {decision.reason}"
                    )
                ref = model_candidate
                metrics = model_evaluation.metrics.to_json()
        champion = Champion(
            ref=ref,
            metric=metric,
            metric_value=float(metrics.get(metric) or float("nan")),
            metrics=metrics_json(
                {
                    k: float("nan") if v is None else float(v)
                    for k, v in metrics.items()
                    if isinstance(v, int | float) or v is None
                }
            ),
            decision=decision.decision,
            decided_at=decision.decided_at.isoformat(),
        )
        links = model_links(mlflow, ref)
        return dg.Output(
            champion,
            metadata={
                "model_version": dg.MetadataValue.text(ref.version),
                "model_family": dg.MetadataValue.text(ref.family),
                "decision": dg.MetadataValue.text(decision.decision),
                "reason": dg.MetadataValue.text(decision.reason),
                "previous_champion": dg.MetadataValue.text(
                    decision.previous_champion_version or "none"
                ),
                "trigger": dg.MetadataValue.text(trigger),
                metric: dg.MetadataValue.float(champion.metric_value),
                "train_window_start": dg.MetadataValue.text(ref.train_window[0]),
                "train_window_end": dg.MetadataValue.text(ref.train_window[1]),
                "data_version": dg.MetadataValue.text(ref.data_version),
                "mlflow_run": dg.MetadataValue.url(links.run_url),
                "mlflow_model": dg.MetadataValue.url(links.model_url),
            },
        )

    @dg.asset(
        key=model_card_key(spec),
        ins={
            "champion_model": dg.AssetIn(champion_key(spec)),
            "model_evaluation": dg.AssetIn(model_evaluation_key(spec)),
        },
        group_name=spec.name,
        kinds={"markdown"},
        code_version=version,
        pool=WAREHOUSE_POOL,
    )
    def model_card(
        champion_model: Champion,
        model_evaluation: Evaluation,
        warehouse: Warehouse,
        mlflow: MlflowTracking,
    ) -> dg.MaterializeResult:
        """The champion's model card, generated from lineage on every champion change."""
        ref = champion_model.ref
        evaluation = model_evaluation
        if evaluation.metrics.rows and champion_model.decision == "rollback":
            evaluation = pickle.loads(evaluation_path(spec, ref.version).read_bytes())
        with warehouse.get_connection() as conn:
            history = decisions(conn, spec.name, ref.registered_name)
        latest = history[-1]
        card = render_model_card(
            spec,
            ref,
            evaluation.metrics,
            evaluation.slices,
            evaluation.importance,
            evaluation.gates,
            latest,
            model_links(mlflow, ref),
            evaluation_window=ref.train_window,
            history=history,
        )
        path = settings.reports_dir() / spec.name / "model_card.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(card)
        versioned = path.with_name(f"model_card_v{ref.version}.md")
        versioned.write_text(card)
        return dg.MaterializeResult(
            metadata={
                "model_version": dg.MetadataValue.text(ref.version),
                "path": dg.MetadataValue.path(str(path)),
                "card": dg.MetadataValue.md(card),
            }
        )

    return [champion_model, model_card]
