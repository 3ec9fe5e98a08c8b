"""Act on the gates and write the audit row, as one step an asset can call.

The audit row is the decision's write-ahead record: it is committed first, then the registry is
moved. A crash (`kill -9`, OOM) between the two, or in the middle of the move, leaves a row whose
move is unfinished, never a moved alias without its row; the next `decide` or
`rollback_and_record` first finishes it (`reconcile`: the alias is set to the row's new champion
and its tags are completed), so the registry and the audit agree again before anything new is
decided. A move that fails with an error (MLflow refused it) withdraws its row before the error
propagates, unless the alias had already moved: then the row stays and is finished next time.
The audited champion is authoritative: an alias moved outside this module is moved back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence

import duckdb

from ml_assets.core.faults import fault_point
from ml_assets.core.predictor import current_champion
from ml_assets.core.spec import ShadowGateSection
from ml_assets.core.sql import transaction
from ml_assets.layers.evaluate.gates import GateResult, Verdict, verdict
from ml_assets.layers.evaluate.metrics import Metrics
from ml_assets.layers.promote.audit import TABLE, Decision, decisions, record_decision
from ml_assets.layers.promote.registry import (
    mark_superseded,
    promote,
    reject,
    rollback,
    rollback_target,
    version_tags,
)
from ml_assets.layers.promote.shadow import (
    GATE,
    RequestsTable,
    open_trials,
    shadow_gate,
    shadow_stats,
    superseded_gate,
    trial_evidence,
)
from ml_assets.resources.mlflow_tracking import MlflowTracking

_LOG = logging.getLogger(__name__)


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
    shadow: ShadowGateSection | None = None,
    requests: RequestsTable | None = None,
) -> Decision:
    """Promote the candidate if every blocking gate passed, else reject it; audit either way.

    With `shadow` (and the request log's table), a candidate that passed and would replace a
    champion is first tried in shadow (`shadow.py`): the answer is `pending`, recorded only as
    its trial, until the log holds `shadow.min_rows` compared rows; then the shadow gate joins
    the offline ones and the decision is made and audited as any other."""
    outcome = verdict(gates)
    at = at or dt.datetime.now(dt.UTC)
    reconcile(tracking, conn, dataset=dataset, model_name=model_name)
    recorded = _decided_last(conn, dataset, model_name, str(candidate_version))
    if recorded is not None:
        return recorded
    previous = current_champion(tracking, model_name)
    candidate = str(candidate_version)
    metrics_json = dict(metrics.to_json() if isinstance(metrics, Metrics) else metrics)
    if outcome.promote and shadow is not None and previous is not None and previous != candidate:
        if requests is None:
            raise ValueError("a shadow gate needs the request log's table")
        _end_superseded(
            tracking,
            conn,
            requests,
            shadow,
            dataset=dataset,
            model_name=model_name,
            candidate=candidate,
            champion=previous,
            code_version=code_version,
            dagster_run_id=dagster_run_id,
            at=at,
        )
        trial, stats = trial_evidence(
            tracking,
            conn,
            requests,
            dataset=dataset,
            model_name=model_name,
            candidate_version=candidate,
            champion_version=previous,
            trigger=trigger,
            dagster_run_id=dagster_run_id,
            at=at,
        )
        gate = shadow_gate(stats, shadow, trial)
        metrics_json |= {"shadow_compared_rows": stats.compared_rows, GATE: stats.agreement}
        if stats.compared_rows < shadow.min_rows:
            return Decision(
                dataset=dataset,
                model_name=model_name,
                decision="pending",
                reason=f"in shadow: {stats.compared_rows} of {shadow.min_rows} rows compared",
                candidate_version=candidate,
                previous_champion_version=previous,
                new_champion_version=previous,
                trigger=trial.trigger,
                code_version=code_version,
                dagster_run_id=dagster_run_id,
                decided_at=at,
                metrics=metrics_json,
                checks=[*(g.to_json() for g in gates), gate.to_json()],
            )
        gates = [*gates, gate]
        outcome = verdict(gates)
        trigger = f"{trial.trigger}; shadow trial since {trial.started_at.isoformat()}"
    decision = Decision(
        dataset=dataset,
        model_name=model_name,
        decision="promoted" if outcome.promote else "rejected",
        reason=outcome.reason,
        candidate_version=candidate,
        previous_champion_version=previous,
        new_champion_version=candidate if outcome.promote else previous,
        trigger=trigger,
        code_version=code_version,
        dagster_run_id=dagster_run_id,
        decided_at=at,
        metrics=metrics_json,
        checks=[g.to_json() for g in gates],
    )
    decision_id = record_decision(conn, decision)
    fault_point("promotion.audit_recorded")
    try:
        if outcome.promote:
            promote(tracking, model_name, decision.candidate_version, outcome, at=at)
        else:
            reject(tracking, model_name, decision.candidate_version, outcome.reason, at=at)
    except Exception:
        _withdraw_unless_moved(tracking, conn, decision, decision_id)
        raise
    return dataclasses.replace(decision, decision_id=decision_id)


def _end_superseded(
    tracking: MlflowTracking,
    conn: duckdb.DuckDBPyConnection,
    requests: RequestsTable,
    shadow: ShadowGateSection,
    *,
    dataset: str,
    model_name: str,
    candidate: str,
    champion: str,
    code_version: str,
    dagster_run_id: str,
    at: dt.datetime,
) -> list[Decision]:
    """Reject every other candidate still in shadow: only one can be `challenger`, so a trial a
    newer candidate replaces would stay pending forever. Each is audited with the rows it was
    compared on so far and a failed `shadow_agreement` gate saying what superseded it."""
    ended = []
    for trial in open_trials(conn, dataset=dataset, model_name=model_name):
        if trial.candidate_version == candidate:
            continue
        stats = shadow_stats(conn, requests, trial)
        gate = superseded_gate(stats, shadow, trial, by=candidate)
        reason = (
            f"superseded in shadow by v{candidate}: its trial ended after {stats.compared_rows} "
            f"of {shadow.min_rows} compared rows"
        )
        decision = Decision(
            dataset=dataset,
            model_name=model_name,
            decision="rejected",
            reason=reason,
            candidate_version=trial.candidate_version,
            previous_champion_version=champion,
            new_champion_version=champion,
            trigger=f"{trial.trigger}; shadow trial since {trial.started_at.isoformat()}",
            code_version=code_version,
            dagster_run_id=dagster_run_id,
            decided_at=at,
            metrics={"shadow_compared_rows": stats.compared_rows, GATE: stats.agreement},
            checks=[gate.to_json()],
        )
        decision_id = record_decision(conn, decision)
        try:
            reject(tracking, model_name, trial.candidate_version, reason, at=at)
        except Exception:
            _withdraw_unless_moved(tracking, conn, decision, decision_id)
            raise
        ended.append(dataclasses.replace(decision, decision_id=decision_id))
    return ended


def _decided_last(
    conn: duckdb.DuckDBPyConnection, dataset: str, model_name: str, candidate_version: str
) -> Decision | None:
    """The newest decision, if it is about this very candidate: the run that recorded it was cut
    short after its audit row (the registry move is finished by `reconcile`), and its redo, which
    trains the same version again (`lineage_key`), must not decide it a second time: judged
    against itself as champion it would be promoted twice."""
    rows = decisions(conn, dataset, model_name)
    last = rows[-1] if rows else None
    if last is None or last.decision == "rollback" or last.candidate_version != candidate_version:
        return None
    _LOG.warning(
        "%s v%s was decided already (decision %s, %s): not deciding it twice",
        model_name,
        candidate_version,
        last.decision_id,
        last.decision,
    )
    return last


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
    reconcile(tracking, conn, dataset=dataset, model_name=model_name)
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
    decision_id = record_decision(conn, decision)
    fault_point("promotion.audit_recorded")
    try:
        rollback(tracking, model_name, target, reason, at=at)
    except Exception:
        _withdraw_unless_moved(tracking, conn, decision, decision_id)
        raise
    return dataclasses.replace(decision, decision_id=decision_id)


def _withdraw_unless_moved(
    tracking: MlflowTracking, conn: duckdb.DuckDBPyConnection, decision: Decision, decision_id: int
) -> None:
    """After a registry error: delete the decision's row if the alias did not move (no row may
    claim a move that never happened). If the registry cannot even be read, the row stays and
    the next `reconcile` finishes the move the gates allowed."""
    try:
        champion = current_champion(tracking, decision.model_name)
    except Exception:  # the registry is unreachable: the original error is the one to raise
        return
    moved = decision.decision != "rejected" and champion == decision.new_champion_version
    if moved and decision.new_champion_version != decision.previous_champion_version:
        return
    with transaction(conn):
        conn.execute(f"DELETE FROM {TABLE} WHERE decision_id = ?", [decision_id])


def _tag_time(tags: dict[str, str], key: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(tags[key])
    except (KeyError, ValueError):
        return None


def reconcile(
    tracking: MlflowTracking, conn: duckdb.DuckDBPyConnection, *, dataset: str, model_name: str
) -> Decision | None:
    """Finish the newest audited decision if a crash cut its registry move short; return it if
    anything was done.

    Promoted or rolled back: the `champion` alias must point at the row's new champion, with the
    tags the move writes (`promoted_at`/`restored_at` at the decision time, `superseded_by` on
    the replaced version). Rejected: the version must carry `rejected=true`.
    """
    rows = decisions(conn, dataset, model_name)
    if not rows:
        return None
    last = rows[-1]
    champion = current_champion(tracking, model_name)
    at = last.decided_at
    if last.decision == "rejected":
        candidate = str(last.candidate_version)
        if champion == candidate or version_tags(tracking, model_name, candidate).get("rejected"):
            return None
        reject(tracking, model_name, candidate, last.reason, at=at)
    elif champion != last.new_champion_version:
        if last.decision == "promoted":
            allowed = Verdict(promote=True, failed_blocking=(), warnings=(), reason=last.reason)
            promote(tracking, model_name, str(last.candidate_version), allowed, at=at)
        else:
            rollback(tracking, model_name, last.new_champion_version, last.reason, at=at)
    else:
        new, previous = str(last.new_champion_version), last.previous_champion_version
        stamp = "promoted_at" if last.decision == "promoted" else "restored_at"
        complete = _tag_time(version_tags(tracking, model_name, new), stamp) == at
        if previous and previous != new:
            replaced = version_tags(tracking, model_name, previous)
            complete &= replaced.get("superseded_by") == new or last.decision == "rollback"
        if complete:
            return None
        if last.decision == "promoted" and previous and previous != new:
            mark_superseded(tracking, model_name, previous, new, at)
    _LOG.warning(
        "%s: finished decision %s (%s v%s at %s) whose registry move a crash had cut short",
        model_name,
        last.decision_id,
        last.decision,
        last.candidate_version,
        at.isoformat(),
    )
    return last
