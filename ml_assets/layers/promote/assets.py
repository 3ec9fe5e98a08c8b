"""`champion_model` and `model_card`: the gated move of the `champion` alias, and its card.

`champion_model` is the one owner of registry side effects: it reads the evaluation's gates and
either promotes the candidate (moves the alias) or rejects it (tags the version), and writes the
audit row either way. A rejection is a decision, not a failure: the run succeeds, the failed gates
show on `model_evaluation`, and `champion_model` emits no new materialization, so nothing
downstream (scoring, monitoring, the card) is triggered and the champion stays what it was. A
candidate in its shadow trial (`evaluation.shadow`, see `shadow.py`) is the same, with an
observation saying how many online rows it has been compared on. The
same asset performs rollbacks (config `rollback_to`), so each materialization names the version
the alias points at.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from ml_assets import settings
from ml_assets.core.lineage import code_version
from ml_assets.core.model import ModelRef
from ml_assets.core.predictor import registered_ref
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import trigger_of
from ml_assets.layers.evaluate.logic import Evaluation
from ml_assets.layers.evaluate.record import load_record
from ml_assets.layers.promote.audit import Decision, decisions
from ml_assets.layers.promote.card import model_links, render_model_card
from ml_assets.layers.promote.champion import Champion
from ml_assets.layers.promote.decide import decide, rollback_and_record
from ml_assets.layers.promote.shadow import GATE, RequestsTable
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


class ChampionConfig(dg.Config):
    rollback_to: str | None = Field(
        None,
        description="Roll `champion` back to this version ('previous' = the one it replaced) "
        "instead of promoting the evaluated candidate.",
    )
    reason: str = Field("", description="Why (recorded in the audit trail).")


def _pending_observation(spec: DatasetSpec, decision: Decision) -> dg.AssetObservation:
    """What the UI (and the `shadow_gate` sensor) sees of a candidate still in its trial."""
    metrics = decision.metrics
    agreement = metrics.get(GATE)
    return dg.AssetObservation(
        asset_key=spec.names.key("champion_model"),
        metadata={
            "decision": dg.MetadataValue.text("pending"),
            "shadow_candidate": dg.MetadataValue.text(str(decision.candidate_version)),
            "champion": dg.MetadataValue.text(decision.previous_champion_version or "none"),
            "reason": dg.MetadataValue.text(decision.reason),
            "shadow_compared_rows": dg.MetadataValue.int(
                int(metrics.get("shadow_compared_rows") or 0)
            ),
            "shadow_agreement": dg.MetadataValue.float(
                float("nan") if agreement is None else float(agreement)
            ),
        },
    )


def requests_table(spec: DatasetSpec) -> RequestsTable:
    return RequestsTable(spec.names.table("online_requests"), spec.name)


def build_promote_assets(spec: DatasetSpec) -> list[dg.AssetsDefinition]:
    metric = spec.evaluation.metric
    requests = requests_table(spec)
    # With the shadow gate, a promotion reads the ingested request log: lineage says so.
    online_deps = [spec.names.key("online_requests")] if spec.evaluation.shadow else []
    version = code_version(spec, "promote")
    max_age = dt.timedelta(days=spec.monitoring.champion_max_age_days)

    @dg.asset(
        key=spec.names.key("champion_model"),
        ins={
            "model_evaluation": dg.AssetIn(spec.names.key("model_evaluation")),
            "model_candidate": dg.AssetIn(spec.names.key("model_candidate")),
        },
        deps=online_deps,
        group_name=spec.name,
        kinds={"mlflow"},
        code_version=version,
        pool=warehouse_pool(),
        # No output on a rejection: the champion did not change, so nothing downstream runs.
        output_required=False,
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
    ) -> Iterator[dg.Output[Champion]]:
        """The model version the `champion` alias points at, and what it was judged on."""
        trigger = trigger_of(context.run.tags)
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
                record = load_record(mlflow, ref)
                expected, threshold = record.expected_trailing, record.metrics.threshold
            else:
                decision = decide(
                    mlflow,
                    conn,
                    candidate_version=model_candidate.version,
                    gates=model_evaluation.gates,
                    metrics=model_evaluation.audit_metrics(),
                    shadow=spec.evaluation.shadow,
                    requests=requests,
                    **common,
                )
                if decision.decision == "pending":
                    context.log.info(f"{model_candidate.uri} {decision.reason}")
                    context.log_event(_pending_observation(spec, decision))
                    return
                if decision.decision == "rejected":
                    context.log.info(
                        f"{model_candidate.uri} rejected; champion stays "
                        f"v{decision.new_champion_version or '(none)'}: {decision.reason}"
                    )
                    return
                ref = model_candidate
                metrics = model_evaluation.audit_metrics()
                expected = model_evaluation.expected_trailing
                threshold = model_evaluation.metrics.threshold
        champion = Champion(
            ref=ref,
            metric=metric,
            metric_value=float(metrics.get(metric) or float("nan")),
            metrics={
                k: None if v is None else float(v)
                for k, v in metrics.items()
                if v is None or isinstance(v, int | float)
            },
            decision=decision.decision,
            decided_at=decision.decided_at.isoformat(),
            expected_trailing=expected,
            threshold=threshold,
        )
        links = model_links(mlflow, ref)
        yield dg.Output(
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
                "expected_worst_trailing": dg.MetadataValue.float(expected),
                "decision_threshold": dg.MetadataValue.float(
                    float("nan") if threshold is None else float(threshold)
                ),
                "train_window_start": dg.MetadataValue.text(ref.train_window[0]),
                "train_window_end": dg.MetadataValue.text(ref.train_window[1]),
                "data_version": dg.MetadataValue.text(ref.data_version),
                "mlflow_run": dg.MetadataValue.url(links.run_url),
                "mlflow_model": dg.MetadataValue.url(links.model_url),
            },
        )

    @dg.asset(
        key=spec.names.key("model_card"),
        ins={"champion_model": dg.AssetIn(spec.names.key("champion_model"))},
        group_name=spec.name,
        kinds={"markdown"},
        code_version=version,
        pool=warehouse_pool(),
    )
    def model_card(
        champion_model: Champion, warehouse: Warehouse, mlflow: MlflowTracking
    ) -> dg.MaterializeResult:
        """The champion's model card, generated from lineage on every champion change.

        The evaluation comes from the champion's own MLflow run (recorded by `model_evaluation`),
        so a card after a rollback shows the restored version's evaluation, not the newest one.
        """
        ref = champion_model.ref
        record = load_record(mlflow, ref)
        with warehouse.get_connection() as conn:
            history = decisions(conn, spec.name, ref.registered_name)
        latest = history[-1]
        card = render_model_card(
            spec,
            ref,
            record.metrics,
            record.slices,
            record.importance,
            record.gates,
            latest,
            model_links(mlflow, ref),
            evaluation_window=record.holdout,
            history=history,
            baselines=record.baselines,
            calibration=record.calibration,
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
