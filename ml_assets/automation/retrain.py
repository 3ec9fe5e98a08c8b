"""The retrain sensor: failed monitoring checks, or a stale champion, request a retrain.

It reads only the Dagster instance (check evaluations, runs and materializations), never the
warehouse, so it cannot contend for DuckDB's lock. It acts on the current state: a failure
recorded before the newest training run or champion change has been answered already (by that
retrain, or by a champion newer than the failure), so it requests nothing; the open triggers of
one tick request one retrain, on the newest of them; and a cooldown in data days keeps a burst
of failing days from requesting a burst of retrains. The run is tagged with the trigger, and the
training run, MLflow run and audit row carry that tag forward. A range run's per-day check
records are details of its window's result, which is the one trigger (`ml_assets.core.checks`).
"""

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from ml_assets.core.checks import is_day_record
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import AS_OF_TAG, TRIGGER_CHECK_TAG, TRIGGER_PARTITION_TAG, TRIGGER_TAG

PAGE = 200  # failed check executions read per query


@dataclass(frozen=True)
class Trigger:
    kind: str  # "check" | "stale"
    check: str  # "<asset>:<check>" or "champion_model:stale"
    day: dt.date  # the data day that raised it (end of the checked window)
    record_id: int  # check evaluation storage id; 0 for staleness
    run_id: str  # the Dagster run whose check failed ("" for staleness)
    detail: str

    @property
    def label(self) -> str:
        return f"{self.check}@{self.day.isoformat()}"


@dataclass
class RetrainCursor:
    last_record_id: int = 0
    last_retrain_day: str | None = None  # data day of the last requested retrain

    @classmethod
    def parse(cls, raw: str | None) -> "RetrainCursor":
        return cls(**json.loads(raw)) if raw else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self))


def answered_at(instance: dg.DagsterInstance, spec: DatasetSpec, job_name: str) -> float:
    """When the newest training run started or the champion last changed (epoch seconds).

    A failure recorded before then needs no new retrain: that run answered it, or the champion
    it was raised against has been replaced.
    """
    runs = instance.get_run_records(filters=dg.RunsFilter(job_name=job_name), limit=1)
    started = runs[0].create_timestamp.timestamp() if runs else 0.0
    changed = instance.fetch_materializations(spec.names.key("champion_model"), limit=1).records
    return max(started, changed[0].timestamp if changed else 0.0)


def _open_failures(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, after_record_id: int, answered: float
) -> Iterator[AssetCheckExecutionRecord]:
    """Failed executions newer than the cursor and the last answer, newest first, paged: a
    range run adds a failed record per bad day, which must not push older open failures out of
    a single page. Ids and creation times both grow with insertion, so the walk stops at the
    first record at or below either bound."""
    history = instance.event_log_storage.get_asset_check_execution_history
    before = None
    while True:
        page = history(
            key, limit=PAGE, cursor=before, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        for record in page:
            if record.id <= after_record_id or record.create_timestamp <= answered:
                return
            yield record
        if len(page) < PAGE:
            return
        before = page[-1].id


def failed_checks(
    instance: dg.DagsterInstance, spec: DatasetSpec, after_record_id: int, answered: float = 0.0
) -> list[Trigger]:
    """Open failures of the spec's `retrain_on` checks: newer than the cursor and than the last
    retrain or champion change (`answered`), oldest first."""
    triggers = []
    for name in spec.monitoring.retrain_on:
        asset, check = name.split(":", 1)
        key = dg.AssetCheckKey(spec.names.key(asset), check)
        for record in _open_failures(instance, key, after_record_id, answered):
            if record.event is None or is_day_record(record.evaluation):
                continue
            evaluation = record.event.dagster_event.event_specific_data
            meta = evaluation.metadata
            day = meta.get("worst_day") or meta.get("partition_end")
            if day is None:
                continue
            triggers.append(
                Trigger(
                    kind="check",
                    check=name,
                    day=dt.date.fromisoformat(str(day.value)),
                    record_id=record.id,
                    run_id=record.run_id,
                    detail=str(meta["summary"].value) if "summary" in meta else "",
                )
            )
    return sorted(triggers, key=lambda t: (t.day, t.record_id))


def _latest_partition(instance: dg.DagsterInstance, key: dg.AssetKey) -> dt.date | None:
    keys = instance.get_materialized_partitions(key)
    return dt.date.fromisoformat(max(keys)) if keys else None


def stale_champion(instance: dg.DagsterInstance, spec: DatasetSpec) -> Trigger | None:
    """The champion is stale when the newest day it scored is more than max-age past its data.

    "Newest data" is the newest *predictions* day, not the newest features day: features can be
    backfilled ahead of time (a replay, a late bulk load), but the model's age matters only
    against the days it is actually asked to score.
    """
    event = instance.get_latest_materialization_event(spec.names.key("champion_model"))
    newest = _latest_partition(instance, spec.names.key("predictions"))
    if event is None or newest is None or event.asset_materialization is None:
        return None
    trained = event.asset_materialization.metadata.get("train_window_end")
    if trained is None:
        return None
    age = (newest - dt.date.fromisoformat(str(trained.value))).days
    max_age = spec.monitoring.champion_max_age_days
    if age <= max_age:
        return None
    return Trigger("stale", "champion_model:stale", newest, 0, "", f"{age} days > {max_age}")


@dataclass(frozen=True)
class Plan:
    """One tick's decision: the trigger a retrain names, and the newest open day it trains to."""

    trigger: Trigger | None
    newest_day: dt.date | None
    merged: tuple[Trigger, ...]  # open triggers answered by the same retrain
    cursor: RetrainCursor


def plan_retrains(triggers: Sequence[Trigger], cursor: RetrainCursor, cooldown_days: int) -> Plan:
    """At most one retrain per tick, outside the cooldown (data days since the last requested
    retrain). It names the newest failed check (the staleness rule only when no check failed)
    and trains up to the newest open day; the other open triggers are merged into it."""
    last = dt.date.fromisoformat(cursor.last_retrain_day) if cursor.last_retrain_day else None
    eligible = [t for t in triggers if last is None or (t.day - last).days >= cooldown_days]
    chosen = max(eligible, key=lambda t: (t.kind == "check", t.day, t.record_id), default=None)
    newest = max((t.day for t in eligible), default=None)
    last_id = max([cursor.last_record_id, *(t.record_id for t in triggers)])
    last_day = newest or last
    return Plan(
        trigger=chosen,
        newest_day=newest,
        merged=tuple(t for t in eligible if t is not chosen),
        cursor=RetrainCursor(last_id, last_day.isoformat() if last_day else None),
    )


def retrain_request(
    spec: DatasetSpec, trigger: Trigger, training_op: str, newest_day: dt.date | None = None
) -> dg.RunRequest:
    """Train on the days whose labels were known on the newest open day (default: the trigger's)."""
    as_of = (newest_day or trigger.day) - dt.timedelta(days=spec.label.delay_days)
    return dg.RunRequest(
        run_key=f"retrain:{spec.name}:{trigger.check}:{trigger.record_id or trigger.day}",
        run_config={"ops": {training_op: {"config": {"as_of": as_of.isoformat()}}}},
        tags={
            TRIGGER_TAG: trigger.label,
            TRIGGER_CHECK_TAG: trigger.check,
            TRIGGER_PARTITION_TAG: trigger.day.isoformat(),
            AS_OF_TAG: as_of.isoformat(),
        },
    )


def build_retrain_sensor(spec: DatasetSpec, job_name: str, training_op: str) -> dg.SensorDefinition:
    cooldown = spec.monitoring.retrain_cooldown_days

    @dg.sensor(
        name=spec.names.sensor("retrain"),
        job_name=job_name,
        minimum_interval_seconds=60,
        description=(
            f"Retrains `{spec.name}` when {', '.join(spec.monitoring.retrain_on)} fail or the "
            f"champion is older than {spec.monitoring.champion_max_age_days} data days; "
            f"cooldown {cooldown} data days."
        ),
    )
    def retrain(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = RetrainCursor.parse(context.cursor)
        answered = answered_at(context.instance, spec, job_name)
        triggers = failed_checks(context.instance, spec, cursor.last_record_id, answered)
        stale = stale_champion(context.instance, spec)
        if stale is not None:
            triggers.append(stale)
        plan = plan_retrains(triggers, cursor, cooldown)
        # Debug: kept in the tick's log in the UI, off the console (`make run` states decisions).
        for t in plan.merged:
            context.log.debug(f"trigger {t.label} answered by the same retrain")
        for t in triggers:
            if t is not plan.trigger and t not in plan.merged:
                context.log.debug(f"trigger {t.label} within cooldown; not retraining")
        requests = (
            [retrain_request(spec, plan.trigger, training_op, plan.newest_day)]
            if plan.trigger
            else []
        )
        return dg.SensorResult(run_requests=requests, cursor=plan.cursor.dump())

    return retrain
