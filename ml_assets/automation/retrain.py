"""The retrain sensor: failed monitoring checks, or a stale champion, request a retrain.

It reads only the Dagster instance (check evaluations and materializations), never the
warehouse, so it cannot contend for DuckDB's lock. Each trigger is one check evaluation (its
storage id is in the run key, so it fires once), and a cooldown in data days keeps a burst of
failing days from requesting a burst of retrains. The run is tagged with the trigger, and the
training run, MLflow run and audit row carry that tag forward.
"""

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import AS_OF_TAG, TRIGGER_CHECK_TAG, TRIGGER_PARTITION_TAG, TRIGGER_TAG


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


def failed_checks(
    instance: dg.DagsterInstance, spec: DatasetSpec, after_record_id: int
) -> list[Trigger]:
    """Failed evaluations of the spec's `retrain_on` checks newer than the cursor, oldest first."""
    triggers = []
    for name in spec.monitoring.retrain_on:
        asset, check = name.split(":", 1)
        key = dg.AssetCheckKey(spec.names.key(asset), check)
        history = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=200, status={AssetCheckExecutionRecordStatus.FAILED}
        )
        for record in history:
            if record.id <= after_record_id or record.event is None:
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


def plan_retrains(
    triggers: Sequence[Trigger], cursor: RetrainCursor, cooldown_days: int
) -> tuple[list[Trigger], RetrainCursor]:
    """Which triggers become retrains: at most one per cooldown window of data days."""
    chosen = []
    last = dt.date.fromisoformat(cursor.last_retrain_day) if cursor.last_retrain_day else None
    for trigger in triggers:
        if last is None or (trigger.day - last).days >= cooldown_days:
            chosen.append(trigger)
            last = trigger.day
    last_id = max([cursor.last_record_id, *(t.record_id for t in triggers)])
    return chosen, RetrainCursor(last_id, last.isoformat() if last else None)


def retrain_request(spec: DatasetSpec, trigger: Trigger, training_op: str) -> dg.RunRequest:
    """Train on the days whose labels were known on the trigger day."""
    as_of = trigger.day - dt.timedelta(days=spec.label.delay_days)
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
        triggers = failed_checks(context.instance, spec, cursor.last_record_id)
        stale = stale_champion(context.instance, spec)
        if stale is not None:
            triggers.append(stale)
        chosen, new_cursor = plan_retrains(triggers, cursor, cooldown)
        for t in triggers:
            if t not in chosen:
                context.log.info(f"trigger {t.label} within cooldown; not retraining")
        return dg.SensorResult(
            run_requests=[retrain_request(spec, t, training_op) for t in chosen],
            cursor=new_cursor.dump(),
        )

    return retrain
