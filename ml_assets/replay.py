"""The replay of a dataset's history, month by month, as it would have happened live.

Train on the first `training.window_days` days, then for each later month: score and monitor its
days in one run, and let the retrain sensor decide, from the check results in the Dagster
instance exactly as the sensor daemon would, whether to retrain (and the gates whether to
promote). `replay.months` in the spec (or `make run REPLAY_MONTHS=N`) keeps only the newest N
months: the first model is then trained on the window just before them. `ml_assets.run` drives
it for `make run`; each stage's line goes to the console as it ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass

import dagster as dg
from mlflow.exceptions import MlflowException

from ml_assets.console import Console, LogStream
from ml_assets.core.checks import is_day_record
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import RANGE_END, RANGE_START, REUSE_REGISTERED_TAG, TRIGGER_TAG
from ml_assets.layers.train.tracking import registered_model_name
from ml_assets.replay_journal import Journal, Step, identity, open_journal
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.run_report import DatasetReport, next_decision_id

# Steps log to the Dagster instance (see them in the UI); the console keeps to the summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SENSOR_LOG = logging.getLogger("ml_assets.run.sensors")


def months(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    out, day = [], first
    while day <= last:
        nxt = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        out.append((day, min(last, nxt - dt.timedelta(days=1))))
        day = nxt
    return out


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay covers: the first training's last day, then the months it monitors."""

    as_of: dt.date
    months: list[tuple[dt.date, dt.date]]
    skipped: int  # months of history after the first window that are not replayed

    def describe(self) -> str:
        if not self.months:
            return f"trained up to {self.as_of}; no later day to monitor"
        first, last = self.months[0][0], self.months[-1][1]
        text = f"{len(self.months)} month(s), {first} .. {last}"
        if self.skipped:
            text += (
                f" (the newest {len(self.months)}; {self.skipped} earlier month(s) not replayed:"
                " replay.months / --replay-months)"
            )
        return text


def replay_plan(
    spec: DatasetSpec, first: dt.date, last: dt.date, limit: int | None = None
) -> ReplayPlan:
    """Train on the first window and monitor every later month, or, with `limit`, only the
    newest `limit` months, training first on the window just before them."""
    as_of = first + dt.timedelta(days=spec.training.window_days - 1)
    later = months(as_of + dt.timedelta(days=1), last)
    if limit is None or len(later) <= limit:
        return ReplayPlan(as_of, later, 0)
    kept = later[-limit:]  # whole calendar months: only the first month after the window is cut
    return ReplayPlan(kept[0][0] - dt.timedelta(days=1), kept, len(later) - limit)


def _execute(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    console: Console | None,
    label: str,
    **kwargs: object,
) -> dg.ExecuteInProcessResult:
    run_id = str(uuid.uuid4())  # known before the run starts, so the console can follow it
    stop = console.watch(instance, run_id, label, len(job.graph.nodes)) if console else None
    try:
        return job.execute_in_process(
            instance=instance, raise_on_error=False, run_id=run_id, **kwargs
        )
    finally:
        if stop is not None:
            stop()


def run_range(
    defs: dg.Definitions,
    job: str,
    instance: dg.DagsterInstance,
    start: dt.date,
    end: dt.date,
    *,
    console: Console | None = None,
    label: str = "",
) -> dg.ExecuteInProcessResult:
    """One run over a range of days (a single-run backfill), as the UI's backfill launches it."""
    return _execute(
        defs.resolve_job_def(job),
        instance,
        console,
        label or job,
        run_config=QUIET,
        tags={RANGE_START: start.isoformat(), RANGE_END: end.isoformat()},
    )


def train(
    defs: dg.Definitions,
    spec: DatasetSpec,
    instance: dg.DagsterInstance,
    as_of: dt.date,
    tags: dict[str, str],
    run_config: dict | None = None,
    *,
    console: Console | None = None,
) -> dg.ExecuteInProcessResult:
    config = run_config or {
        "ops": {spec.names.op("training_set"): {"config": {"as_of": as_of.isoformat()}}}
    }
    return _execute(
        defs.resolve_job_def(spec.names.job("train")),
        instance,
        console,
        f"training ({tags.get(TRIGGER_TAG, 'manual')})",
        run_config={**QUIET, **config},
        tags={**tags, REUSE_REGISTERED_TAG: "true"},
    )


def candidate_version(result: dg.ExecuteInProcessResult) -> str:
    for event in result.get_asset_materialization_events():
        m = event.materialization
        if m.asset_key.path[-1] == "model_candidate" and "model_version" in m.metadata:
            return str(m.metadata["model_version"].value)
    return "?"


def training_outcome(result: dg.ExecuteInProcessResult) -> tuple[bool, str]:
    """(ok, text): a candidate rejected by its gates is a decision in a successful run."""
    if not result.success:
        return False, "FAILED"
    version = candidate_version(result)
    promoted = any(
        e.materialization.asset_key.path[-1] == "champion_model"
        for e in result.get_asset_materialization_events()
    )
    if promoted:
        return True, f"promoted v{version}"
    pending = [
        e.asset_observation_data.asset_observation.metadata
        for e in result.all_events
        if e.is_asset_observation
        and e.asset_observation_data.asset_observation.asset_key.path[-1] == "champion_model"
    ]
    if pending and "shadow_candidate" in pending[-1]:
        return True, f"pending v{version} ({pending[-1]['reason'].value})"
    failed = [
        e.check_name
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] == "model_evaluation"
        and not e.passed
        and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    return True, f"rejected v{version} (gates failed: {', '.join(failed)})"


def monitoring_outcome(result: dg.ExecuteInProcessResult) -> str:
    """The month's checks as signals: which fired and on how many days; `checks ok` if none."""
    if not result.success:
        return "FAILED"
    fired = []
    for ev in result.get_asset_check_evaluations():
        if ev.passed or is_day_record(ev):
            continue
        count = ev.metadata.get("failed_partition_count")
        days = f" {count.value} d" if count is not None else ""
        kind = "warned" if ev.severity == dg.AssetCheckSeverity.WARN else "failed"
        fired.append(f"{ev.check_name} {kind}{days}")
    return ", ".join(fired) or "checks ok"


def replay(
    defs: dg.Definitions,
    spec: DatasetSpec,
    instance: dg.DagsterInstance,
    first: dt.date,
    last: dt.date,
    *,
    console: Console | None = None,
    report: DatasetReport | None = None,
    limit: int | None = None,
) -> tuple[bool, list[str]]:
    """Train on the first window, then score and monitor month by month, retraining on triggers.

    Each step that ends is journaled (`replay_journal`): a rerun of the same plan after a kill
    skips them and redoes the rest, so it tells the history an uninterrupted run tells. Returns
    (every run succeeded, one note per stage); with a console, each stage's line is printed as
    it ends (`(journaled)` for a step an earlier run did).
    """
    report = report if report is not None else DatasetReport()
    plan = replay_plan(spec, first, last, limit)
    report.replayed = plan.describe()
    ok, notes = True, []

    def stage(name: str, window: str, outcome: str, started: float) -> None:
        notes.append(f"  {name} {window}: {outcome}")
        if console is not None:
            console.stage(name, window, outcome, time.perf_counter() - started)

    if not plan.months:  # the first window would reach past the data: nothing to replay
        report.replayed = (
            f"nothing: the history ({(last - first).days + 1} days) ends within the first "
            f"training window ({spec.training.window_days} days) and a day to monitor"
        )
        return ok, [f"  not replayed: {report.replayed}"]
    journal = replay_journal_for(defs, spec, plan)
    report.first_decision_id = journal.first_decision_id
    started = time.perf_counter()
    initial = journal.get("initial")
    if initial is None:
        result = train(defs, spec, instance, plan.as_of, {TRIGGER_TAG: "initial"}, console=console)
        trained_ok, outcome = training_outcome(result)
        ok &= trained_ok
        checks = report.add_checks(result, f"v{candidate_version(result)}")
        report.add_failures(result, "initial training")
        if trained_ok:
            versions = [candidate_version(result)]
            journal.record("initial", Step(outcome, checks, versions=versions))
    else:
        outcome = initial.outcome
        report.extend(initial.checks)
    stage("initial training", f"up to {plan.as_of}", _marked(outcome, initial), started)
    if not outcome.startswith("promoted"):
        notes.append("  no champion, so nothing to score or monitor: see the decision below")
        return ok, notes
    sensor = defs.resolve_sensor_def(spec.names.sensor("retrain"))
    cursor = None
    total = sum((e - s).days + 1 for s, e in plan.months)
    done = 0
    for m_start, m_end in plan.months:
        started, month = time.perf_counter(), f"{m_start:%Y-%m}"
        label = f"replay {month} ({done}/{total} days done): monitoring"
        monitor = journal.get(f"{month}/monitor")
        earlier = monitor
        if monitor is None:
            monitored = run_range(
                defs,
                spec.names.job("monitor"),
                instance,
                m_start,
                m_end,
                console=console,
                label=label,
            )
            ok &= monitored.success
            checks = report.add_checks(monitored, month)
            report.add_failures(monitored, f"monitoring {month}")
            tick = evaluate_sensor(sensor, instance, defs, cursor)
            requests = [
                {"tags": dict(r.tags), "run_config": dict(r.run_config or {})}
                for r in tick.run_requests
            ]
            monitor = Step(
                monitoring_outcome(monitored), checks, cursor=tick.cursor, requests=requests
            )
            if not monitored.success:  # not journaled: a rerun monitors the month again
                stage(
                    f"replay {month}",
                    f"{(m_end - m_start).days + 1} days",
                    monitor.outcome,
                    started,
                )
                return ok, notes
            journal.record(f"{month}/monitor", monitor)
        else:
            report.extend(monitor.checks)
        cursor = monitor.cursor
        outcome = monitor.outcome
        for n, request in enumerate(monitor.requests):
            trigger = request["tags"][TRIGGER_TAG]
            key = f"{month}/retrain/{n}"
            retrain = journal.get(key)
            if retrain is None:
                retrained = train(
                    defs,
                    spec,
                    instance,
                    m_end,
                    request["tags"],
                    request["run_config"],
                    console=console,
                )
                retrained_ok, result = training_outcome(retrained)
                ok &= retrained_ok
                checks = report.add_checks(retrained, f"v{candidate_version(retrained)}")
                report.add_failures(retrained, f"retraining {month}")
                if retrained_ok:
                    journal.record(
                        key, Step(result, checks, versions=[candidate_version(retrained)])
                    )
            else:
                result = retrain.outcome
                report.extend(retrain.checks)
            outcome += f"; retrain on {trigger}: {result}"
        if not monitor.requests:
            outcome += "; no retrain"
        done += (m_end - m_start).days + 1
        days = f"{(m_end - m_start).days + 1} days"
        stage(f"replay {month}", days, _marked(outcome, earlier), started)
    return ok, notes


def _marked(outcome: str, step: Step | None) -> str:
    return outcome if step is None else f"{outcome} (journaled)"


def replay_journal_for(defs: dg.Definitions, spec: DatasetSpec, plan: ReplayPlan) -> Journal:
    """The journal of this plan under this code: resumed if an earlier run left one."""
    code = {
        a.key.to_user_string(): a.code_version
        for a in defs.resolve_all_asset_specs()
        if a.key.path[0] == spec.name
    }
    described = {
        "as_of": plan.as_of.isoformat(),
        "months": [[s.isoformat(), e.isoformat()] for s, e in plan.months],
    }
    tracking = MlflowTracking()
    name = registered_model_name(spec)

    def version_exists(version: str) -> bool:
        try:
            tracking.client().get_model_version(name, version)
        except MlflowException:
            return False
        return True

    return open_journal(
        spec.name,
        identity(described, code),
        next_decision_id=lambda: next_decision_id(spec),
        version_exists=version_exists,
    )


def evaluate_sensor(
    sensor: dg.SensorDefinition,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    cursor: str | None,
) -> dg.SensorResult:
    """One tick, from the instance's check results, exactly as the sensor daemon would run it.
    Dagster prints a sensor's INFO lines on a console logger of its own: they go to the run log."""
    with contextlib.redirect_stderr(LogStream(SENSOR_LOG)) as captured:
        tick = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
        )
        captured.flush()
    return tick
