"""The online gate: a candidate replacing a champion is judged on real requests, in shadow.

Offline gates say a candidate is good on held-out data; they cannot say it behaves on today's
traffic. With `evaluation.shadow` set, a candidate that passed every offline gate and would
replace a champion starts a *trial* instead of being promoted: it stays (or becomes) the
registry's `challenger`, the service scores every request with it in the background (or answers
a canary share), and each row's two decisions go to the request log, which `online_requests`
ingests. Each later decision of that candidate reads the log: below `min_rows` compared rows it
stays pending (nothing is recorded in the audit; the trial row says it started); from then on
the `shadow_agreement` gate joins the offline ones and the decision is recorded as usual. A
trial still open when a newer candidate starts its own is ended: rejected as superseded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_assets.core.predictor import CHALLENGER
from ml_assets.core.spec import ShadowGateSection
from ml_assets.core.sql import render, table_exists, transaction
from ml_assets.layers.evaluate.gates import GateResult
from ml_assets.layers.promote.audit import ensure_audit_table
from ml_assets.resources.mlflow_tracking import MlflowTracking

SQL = Path(__file__).parent / "sql"
TRIALS = "governance.shadow_trials"
GATE = "shadow_agreement"


@dataclass(frozen=True)
class Trial:
    started_at: dt.datetime
    candidate_version: str
    champion_version: str
    trigger: str


@dataclass(frozen=True)
class ShadowStats:
    compared_rows: int
    agreement: float | None  # share of compared rows decided alike; None with no rows
    requests: int


@dataclass(frozen=True)
class RequestsTable:
    """Where the request log lands: `<schema>.online_requests` (quoted for SQL) and its parts
    (to ask whether it exists yet: no service may ever have run)."""

    sql_name: str
    schema: str
    table: str = "online_requests"


def open_trial(
    conn: duckdb.DuckDBPyConnection,
    *,
    dataset: str,
    model_name: str,
    candidate_version: str,
    champion_version: str,
) -> Trial | None:
    """The newest trial of this candidate against this champion (a rollback since means a new
    champion, so a new trial)."""
    if not table_exists(conn, "governance", "shadow_trials"):
        return None
    row = conn.execute(
        f"""SELECT started_at, candidate_version, champion_version, "trigger" FROM {TRIALS}
            WHERE dataset = ? AND model_name = ? AND candidate_version = ?
              AND champion_version = ?
            ORDER BY started_at DESC LIMIT 1""",
        [dataset, model_name, candidate_version, champion_version],
    ).fetchone()
    return None if row is None else Trial(row[0], row[1], row[2], row[3])


def open_trials(conn: duckdb.DuckDBPyConnection, *, dataset: str, model_name: str) -> list[Trial]:
    """Every trial of the model not decided yet, oldest first (see `sql/open_trials.sql`)."""
    if not table_exists(conn, "governance", "shadow_trials"):
        return []
    if not table_exists(conn, "governance", "model_decisions"):
        ensure_audit_table(conn)  # a champion set by hand: no decision recorded yet
    rows = conn.execute(
        render(SQL / "open_trials.sql"), {"dataset": dataset, "model_name": model_name}
    ).fetchall()
    return [Trial(r[0], r[1], r[2], r[3]) for r in rows]


def superseded_gate(
    stats: ShadowStats, section: ShadowGateSection, trial: Trial, by: str
) -> GateResult:
    """The failed gate of a trial ended before it was judged: a newer candidate took its place."""
    gate = shadow_gate(stats, section, trial)
    return dataclasses.replace(
        gate,
        passed=False,
        detail=f"{gate.detail}; superseded by v{by} after {stats.compared_rows} of "
        f"{section.min_rows} rows, before the trial was judged",
    )


def start_trial(
    tracking: MlflowTracking,
    conn: duckdb.DuckDBPyConnection,
    *,
    dataset: str,
    model_name: str,
    candidate_version: str,
    champion_version: str,
    trigger: str,
    dagster_run_id: str,
    at: dt.datetime,
) -> Trial:
    """Record the trial, then point `challenger` at the candidate and tag it: a crash between
    the two leaves a trial whose tag the next call (`ensure_challenger`) writes."""
    with transaction(conn):
        conn.execute(render(SQL / "shadow_trials_ddl.sql"))
        conn.execute(
            f"INSERT INTO {TRIALS} VALUES (?, ?, ?, ?, ?, ?, ?)",
            [at, dataset, model_name, candidate_version, champion_version, trigger, dagster_run_id],
        )
    trial = Trial(at, candidate_version, champion_version, trigger)
    ensure_challenger(tracking, model_name, trial)
    return trial


def ensure_challenger(tracking: MlflowTracking, model_name: str, trial: Trial) -> None:
    """The service shadows `challenger`: during a trial it must be the candidate on trial."""
    client = tracking.client()
    aliases = client.get_registered_model(model_name).aliases
    if str(aliases.get(CHALLENGER)) != trial.candidate_version:  # versions come back as int
        client.set_registered_model_alias(model_name, CHALLENGER, trial.candidate_version)
    tags = client.get_model_version(model_name, trial.candidate_version).tags
    if tags.get("shadow_trial_since") != trial.started_at.isoformat():
        client.set_model_version_tag(
            model_name,
            trial.candidate_version,
            "shadow_trial_since",
            trial.started_at.isoformat(),
        )
        client.set_model_version_tag(
            model_name, trial.candidate_version, "shadow_trial_against", trial.champion_version
        )


def shadow_stats(
    conn: duckdb.DuckDBPyConnection, requests: RequestsTable, trial: Trial
) -> ShadowStats:
    """The trial's compared rows so far, from the ingested request log."""
    if not table_exists(conn, requests.schema, requests.table):
        return ShadowStats(0, None, 0)
    rows, agreement, n_requests = conn.execute(
        render(SQL / "shadow_agreement.sql", requests_table=requests.sql_name),
        {
            "since": trial.started_at,
            "champion": trial.champion_version,
            "candidate": trial.candidate_version,
        },
    ).fetchone()
    return ShadowStats(int(rows), None if agreement is None else float(agreement), int(n_requests))


def trial_evidence(
    tracking: MlflowTracking,
    conn: duckdb.DuckDBPyConnection,
    requests: RequestsTable,
    *,
    dataset: str,
    model_name: str,
    candidate_version: str,
    champion_version: str,
    trigger: str,
    dagster_run_id: str,
    at: dt.datetime,
) -> tuple[Trial, ShadowStats]:
    """The candidate's trial against this champion (started now if it has none) and what the
    request log says of it so far."""
    common = {
        "dataset": dataset,
        "model_name": model_name,
        "candidate_version": candidate_version,
        "champion_version": champion_version,
    }
    trial = open_trial(conn, **common)
    if trial is None:
        trial = start_trial(
            tracking, conn, trigger=trigger, dagster_run_id=dagster_run_id, at=at, **common
        )
    else:
        ensure_challenger(tracking, model_name, trial)
    return trial, shadow_stats(conn, requests, trial)


def shadow_gate(stats: ShadowStats, section: ShadowGateSection, trial: Trial) -> GateResult:
    """The blocking gate a judged trial adds to the offline ones."""
    agreement = math.nan if stats.agreement is None else stats.agreement
    return GateResult(
        name=GATE,
        passed=stats.agreement is not None and stats.agreement >= section.min_agreement,
        blocking=True,
        observed=agreement,
        expected=f">= {section.min_agreement} over >= {section.min_rows} rows",
        detail=(
            f"{stats.compared_rows} online rows ({stats.requests} requests) since "
            f"{trial.started_at.isoformat()} scored by both v{trial.candidate_version} and "
            f"champion v{trial.champion_version}; they decided alike on "
            + ("none" if stats.agreement is None else f"{stats.agreement:.2%}")
        ),
    )
