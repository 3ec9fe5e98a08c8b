"""Act on the gates and write the audit row, as one step an asset can call.

The audit INSERT is opened first and committed only after the registry move succeeds, so a
failed move leaves no row claiming it happened; a move is never made without its row being
written in the same step (the remaining gap, a crash between the move and the COMMIT, is one
local DuckDB commit wide).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

import duckdb

from ml_assets.core.predictor import current_champion
from ml_assets.core.sql import transaction
from ml_assets.layers.evaluate.gates import GateResult, verdict
from ml_assets.layers.evaluate.metrics import Metrics
from ml_assets.layers.promote.audit import Decision, insert_decision
from ml_assets.layers.promote.registry import promote, reject, rollback, rollback_target
from ml_assets.resources.mlflow_tracking import MlflowTracking


def decide(
    tracking: MlflowTracking,
    conn: duckdb.DuckDBPyConnection,
    *,
    dataset: str,
    model_name: str,
    candidate_version: str,
    gates: Sequence[GateResult],
    metrics: Metrics | Mapping[str, object],
    trigger: str,
    code_version: str,
    dagster_run_id: str,
    at: dt.datetime | None = None,
) -> Decision:
    """Promote the candidate if every blocking gate passed, else reject it; audit either way."""
    outcome = verdict(gates)
    at = at or dt.datetime.now(dt.UTC)
    previous = current_champion(tracking, model_name)
    decision = Decision(
        dataset=dataset,
        model_name=model_name,
        decision="promoted" if outcome.promote else "rejected",
        reason=outcome.reason,
        candidate_version=str(candidate_version),
        previous_champion_version=previous,
        new_champion_version=str(candidate_version) if outcome.promote else previous,
        trigger=trigger,
        code_version=code_version,
        dagster_run_id=dagster_run_id,
        decided_at=at,
        metrics=metrics.to_json() if isinstance(metrics, Metrics) else dict(metrics),
        checks=[g.to_json() for g in gates],
    )
    with transaction(conn):
        decision_id = insert_decision(conn, decision)
        if outcome.promote:
            promote(tracking, model_name, decision.candidate_version, outcome, at=at)
        else:
            reject(tracking, model_name, decision.candidate_version, outcome.reason, at=at)
    return dataclasses.replace(decision, decision_id=decision_id)


def rollback_and_record(
    tracking: MlflowTracking,
    conn: duckdb.DuckDBPyConnection,
    *,
    dataset: str,
    model_name: str,
    to_version: str | None,
    reason: str,
    trigger: str,
    code_version: str,
    dagster_run_id: str,
    at: dt.datetime | None = None,
) -> Decision:
    """Roll the champion back (to `to_version`, or the one it replaced) and audit it."""
    at = at or dt.datetime.now(dt.UTC)
    current, target = rollback_target(tracking, model_name, to_version)
    decision = Decision(
        dataset=dataset,
        model_name=model_name,
        decision="rollback",
        reason=reason,
        candidate_version=target,
        previous_champion_version=current,
        new_champion_version=target,
        trigger=trigger,
        code_version=code_version,
        dagster_run_id=dagster_run_id,
        decided_at=at,
    )
    with transaction(conn):
        decision_id = insert_decision(conn, decision)
        rollback(tracking, model_name, target, reason, at=at)
    return dataclasses.replace(decision, decision_id=decision_id)
