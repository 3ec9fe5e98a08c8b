"""The audit trail: one appended row per promotion, rejection or rollback, in DuckDB.

The registry says what serves now; this table says how it got there: which gates passed with
which values, what triggered the retrain, which run and code decided. Rows are only inserted,
before the registry moves (`decide.py`): a row whose move failed with an error is withdrawn, one
whose move a crash cut short is finished by the next decision.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from ml_assets.core.jsonable import json_ready
from ml_assets.core.sql import render, table_exists, transaction

SQL = Path(__file__).parent / "sql"
TABLE = "governance.model_decisions"
# `pending` (a candidate in its shadow trial, `shadow.py`) is an answer of `decide`, never a row.
DecisionKind = Literal["promoted", "rejected", "rollback", "pending"]
KINDS = ("promoted", "rejected", "rollback")


@dataclass(frozen=True)
class Decision:
    dataset: str
    model_name: str
    decision: DecisionKind
    reason: str
    candidate_version: str | None  # promoted/rejected version, or the rollback target
    previous_champion_version: str | None
    new_champion_version: str | None
    trigger: str  # why this ran, e.g. "initial", "drift:2013-07-01:drift_share", "manual"
    code_version: str
    dagster_run_id: str
    decided_at: dt.datetime
    metrics: Mapping[str, object] = field(default_factory=dict)  # JSON-ready values
    checks: Sequence[Mapping[str, object]] = ()  # GateResult.to_json() per gate
    decision_id: int | None = None  # assigned by the table


def _json(value: object) -> str:
    """Strict JSON: NaN/inf (which JSON cannot carry) become null rather than invalid text."""
    return json.dumps(json_ready(value), allow_nan=False, default=str)


def ensure_audit_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(render(SQL / "model_decisions_ddl.sql"))


def insert_decision(conn: duckdb.DuckDBPyConnection, decision: Decision) -> None:
    """INSERT one row inside the caller's transaction, under the next decision number."""
    if decision.decision not in KINDS:
        raise ValueError(f"decision must be one of {KINDS}, got {decision.decision!r}")
    if decision.decided_at.tzinfo is None:
        raise ValueError("decided_at must be timezone-aware")
    ensure_audit_table(conn)
    conn.execute(
        "UPDATE governance.decision_ids "
        "SET last_id = (SELECT max(last_id) FROM governance.decision_ids) + 1"
    )
    conn.execute(
        render(SQL / "insert_decision.sql"),
        {
            "decided_at": decision.decided_at,
            "dagster_run_id": decision.dagster_run_id,
            "dataset": decision.dataset,
            "model_name": decision.model_name,
            "candidate_version": decision.candidate_version,
            "previous_champion_version": decision.previous_champion_version,
            "new_champion_version": decision.new_champion_version,
            "decision": decision.decision,
            "reason": decision.reason,
            "metrics": _json(decision.metrics),
            "checks": _json(list(decision.checks)),
            "trigger": decision.trigger,
            "code_version": decision.code_version,
        },
    )


def record_decision(conn: duckdb.DuckDBPyConnection, decision: Decision) -> int:
    """Append one decision in its own transaction; returns its decision_id.

    The id is read back after the COMMIT: on DuckLake a commit that conflicts with another
    writer's replays the INSERT, which numbers the row again, so only the committed row knows
    its id (found by its run, dataset and decision time, microseconds)."""
    with transaction(conn):
        insert_decision(conn, decision)
    row = conn.execute(
        f"""SELECT max(decision_id) FROM {TABLE}
            WHERE dataset = ? AND dagster_run_id = ? AND decided_at = ?""",
        [decision.dataset, decision.dagster_run_id, decision.decided_at],
    ).fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(f"the decision just recorded in {TABLE} is not there")
    return int(row[0])


def decisions(
    conn: duckdb.DuckDBPyConnection, dataset: str, model_name: str | None = None
) -> list[Decision]:
    """Every decision for a dataset (optionally one model), oldest first."""
    if not table_exists(conn, "governance", "model_decisions"):
        return []
    rows = conn.execute(
        render(SQL / "select_decisions.sql"), {"dataset": dataset, "model_name": model_name}
    ).fetchall()
    return [
        Decision(
            decision_id=r[0],
            decided_at=r[1],
            dagster_run_id=r[2],
            dataset=r[3],
            model_name=r[4],
            candidate_version=r[5],
            previous_champion_version=r[6],
            new_champion_version=r[7],
            decision=r[8],
            reason=r[9],
            metrics=json.loads(r[10]),
            checks=json.loads(r[11]),
            trigger=r[12],
            code_version=r[13],
        )
        for r in rows
    ]
