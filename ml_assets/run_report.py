"""The summary `make run` prints for each dataset: rows per layer, every check, the decisions.

Everything here reads what the runs reported (their materializations and check results) or the
warehouse's own tables after the runs; nothing is recomputed. A failed check is stated as what it
is: a WARN check that fired is a warning, an ERROR gate that failed on a candidate is the reason
for a rejection, a failed monitoring check is a retrain trigger; only a failed *run* is an error.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import dagster as dg
import duckdb

from ml_assets import settings
from ml_assets.core.checks import is_day_record
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import table_exists


@dataclass(frozen=True)
class CheckOutcome:
    """One window result of one check, in one run (a range run's per-day records are skipped)."""

    scope: str  # what the run covered: the data-layer range, a month, a candidate version
    passed: bool
    severity: str  # "WARN" or "ERROR"
    failed_days: int | None  # days that failed inside the window, where the check counts them
    summary: str


# (asset key, check name, its outcome)
CheckEntry = tuple[str, str, CheckOutcome]


@dataclass
class DatasetReport:
    """What one dataset's stages produced, collected as they run."""

    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # asset -> (partitions, rows)
    checks: dict[tuple[str, str], list[CheckOutcome]] = field(
        default_factory=lambda: defaultdict(list)
    )
    failures: list[str] = field(default_factory=list)
    replayed: str = ""  # what the replay covered, and what it left out
    first_decision_id: int = 0  # the replay's decisions are those from this id on

    def add_checks(self, result: dg.ExecuteInProcessResult, scope: str) -> list[CheckEntry]:
        """Add the run's window results; returns them (the replay journal keeps them)."""
        entries = []
        for ev in result.get_asset_check_evaluations():
            if is_day_record(ev):
                continue
            meta = ev.metadata
            count = meta.get("failed_partition_count")
            outcome = CheckOutcome(
                scope=scope,
                passed=ev.passed,
                severity=ev.severity.value,
                failed_days=int(count.value) if count is not None else None,
                summary=str(meta["summary"].value) if "summary" in meta else "",
            )
            entries.append((ev.asset_key.to_user_string(), ev.check_name, outcome))
        self.extend(entries)
        return entries

    def extend(self, entries: list[CheckEntry]) -> None:
        for asset, check, outcome in entries:
            self.checks[(asset, check)].append(outcome)

    def add_failures(self, result: dg.ExecuteInProcessResult, stage: str) -> None:
        """The error of every failed step, as Dagster recorded it (the full trace is in the UI)."""
        for event in result.get_step_failure_events():
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:  # Dagster wraps the user error
                error = error.cause
            message = error.message.strip() if error else "no error recorded"
            self.failures.append(f"{stage}: step {event.step_key} failed: {message}")
        if not result.success and not self.failures:
            self.failures.append(f"{stage}: run {result.run_id} failed")


def layer_rows(result: dg.ExecuteInProcessResult) -> dict[str, tuple[int, int]]:
    """Per asset: partitions materialized and the rows its materializations reported."""
    seen: dict[str, tuple[int, int]] = {}
    reported: set[tuple[str, str]] = set()
    for event in result.get_asset_materialization_events():
        m = event.materialization
        key = m.asset_key.to_user_string()
        parts, rows = seen.get(key, (0, 0))
        # A single-run range reports one result per partition with the window's total: count once.
        run_total = m.metadata.get("dagster/row_count")
        start = m.metadata.get("partition_start")
        window_id = (key, start.value if start else m.partition or "")
        if run_total and window_id not in reported:
            rows += run_total.value
            reported.add(window_id)
        seen[key] = (parts + 1, rows)
    return seen


def verdict(outcome: CheckOutcome) -> str:
    if outcome.passed:
        return "pass"
    return "warn" if outcome.severity == "WARN" else "FAIL"


def check_lines(report: DatasetReport) -> list[str]:
    """Every check: its result where it ran once, else how often it passed and where it did not."""
    lines = []
    for (asset, check), outcomes in report.checks.items():
        name = f"    {asset:<26} {check:<28}"
        if len(outcomes) == 1:
            (one,) = outcomes
            note = f"  {one.summary}" if one.summary else ""
            lines.append(f"{name} {verdict(one)}{note}")
            continue
        failed = [o for o in outcomes if not o.passed]
        text = f"passed {len(outcomes) - len(failed)} of {len(outcomes)}"
        if failed:
            kind = "warned" if failed[0].severity == "WARN" else "failed"
            where = ", ".join(
                o.scope + (f" ({o.failed_days} d)" if o.failed_days else "") for o in failed
            )
            text += f"; {kind} in {where}"
        lines.append(f"{name} {text}")
    return lines


def next_decision_id(spec: DatasetSpec) -> int:
    """The id the next decision about the dataset will have at least (ids only grow)."""
    path = settings.warehouse_path()
    if not path.exists():
        return 0
    with duckdb.connect(str(path), read_only=True) as conn:
        if not table_exists(conn, "governance", "model_decisions"):
            return 0
        (last,) = conn.execute(
            "SELECT max(decision_id) FROM governance.model_decisions WHERE dataset = ?",
            [spec.name],
        ).fetchone()
    return 0 if last is None else int(last) + 1


def decision_lines(spec: DatasetSpec, since: int = 0) -> list[str]:
    """The audit trail, as decisions: what was decided about each candidate, why, and on what;
    `since` keeps those of one replay (an earlier replay's stay in the table and the UI)."""
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        if not table_exists(conn, "governance", "model_decisions"):
            return ["    (no decisions)"]
        rows = conn.execute(
            """SELECT decision, candidate_version, previous_champion_version,
                      new_champion_version, "trigger", reason
               FROM governance.model_decisions WHERE dataset = ? AND decision_id >= ?
               ORDER BY decision_id""",
            [spec.name, since],
        ).fetchall()
    lines = []
    for decision, cand, prev, new, trigger, reason in rows:
        champion = f"champion v{new}" if new == cand else f"champion stays v{new or '-'}"
        lines.append(
            f"    v{cand:<3} {decision:<9} {trigger:<38} {champion:<17} {reason}"
            + (f" (was v{prev})" if prev and new == cand else "")
        )
    return lines or ["    (no decisions)"]


def monthly_lines(spec: DatasetSpec, first: dt.date) -> list[str]:
    """Drift and realized performance per replayed month, from the warehouse's own tables."""
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        if not (
            table_exists(conn, spec.name, "drift") and table_exists(conn, spec.name, "performance")
        ):
            return ["    (nothing monitored)"]
        rows = conn.execute(
            f"""WITH d AS (
                    SELECT date_trunc('month', day) AS m, day, any_value(share_drifted) AS share,
                           bool_or(drifted) FILTER (WHERE is_prediction) AS score_drift
                    FROM "{spec.name}".drift WHERE day >= $first GROUP BY ALL),
                dm AS (SELECT m, avg(share) AS share, max(share) AS worst,
                              count(*) FILTER (WHERE score_drift) AS score_drift_days FROM d GROUP BY m),
                p AS (SELECT date_trunc('month', day) AS m, any_value(metric) AS metric,
                             avg(trailing_value) AS trailing, min(trailing_value) AS low,
                             min(bound) AS bound,
                             count(*) FILTER (WHERE degraded) AS degraded_days,
                             string_agg(DISTINCT array_to_string(model_versions, ','), ',') AS versions
                      FROM "{spec.name}".performance WHERE day >= $first GROUP BY ALL)
                SELECT strftime(dm.m, '%Y-%m'), dm.share, dm.worst, dm.score_drift_days, p.metric,
                       p.trailing, p.low, p.bound, p.degraded_days, p.versions
                FROM dm JOIN p USING (m) ORDER BY 1""",
            {"first": first},
        ).fetchall()
    lines = [
        "    month    drift share (mean/max)  score-drift days  "
        "trailing metric (mean/min) vs bound (min)  degraded days  model versions"
    ]
    for month, share, worst, sdays, metric, trailing, low, bound, degraded, versions in rows:
        lines.append(
            f"    {month}  {share:>6.0%} / {worst:>4.0%}        {sdays:>3}            "
            f"{metric} {_num(trailing):.3f} / {_num(low):.3f} vs {_num(bound):.3f}         "
            f"{degraded:>3}          v{versions}"
        )
    return lines


def _num(value: float | None) -> float:
    return float("nan") if value is None else value
