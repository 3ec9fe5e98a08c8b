"""The shadow-gate sensor: a candidate in its shadow trial is judged again as the log grows.

Built only for a spec with `evaluation.shadow`. Like the retrain sensor it reads only the Dagster
instance, never the warehouse: a trial is open when `champion_model`'s newest observation says
`pending` and no champion materialization came after it; each `online_requests` materialization
after that observation (new request rows in the warehouse) requests one `champion_model` run,
which re-decides the candidate (`decide`: still pending, or promoted/rejected with the
`shadow_agreement` gate). The run key is the materialization's storage id, so a tick never
asks twice for the same log rows.
"""

import dagster as dg

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import TRIGGER_TAG


def _newest(records: dg.EventRecordsResult) -> dg.EventLogRecord | None:
    return records.records[0] if records.records else None


def open_trial_request(instance: dg.DagsterInstance, spec: DatasetSpec) -> dg.RunRequest | None:
    """The run that re-decides the candidate on trial, if one is open and the log grew since."""
    champion = spec.names.key("champion_model")
    observed = _newest(instance.fetch_observations(champion, limit=1))
    if observed is None:
        return None
    observation = observed.asset_observation
    metadata = observation.metadata if observation is not None else {}
    if "shadow_candidate" not in metadata:
        return None
    moved = _newest(instance.fetch_materializations(champion, limit=1))
    if moved is not None and moved.storage_id > observed.storage_id:
        return None  # decided (promoted) since
    ingested = _newest(instance.fetch_materializations(spec.names.key("online_requests"), limit=1))
    if ingested is None or ingested.storage_id < observed.storage_id:
        return None
    candidate = metadata["shadow_candidate"].value
    return dg.RunRequest(
        run_key=f"shadow-{candidate}-{ingested.storage_id}",
        asset_selection=[champion],
        tags={TRIGGER_TAG: f"shadow_trial:v{candidate}"},
    )


def build_shadow_gate_sensor(spec: DatasetSpec) -> dg.SensorDefinition:
    shadow = spec.evaluation.shadow
    assert shadow is not None, "only for a spec with evaluation.shadow"

    @dg.sensor(
        name=spec.names.sensor("shadow_gate"),
        target=dg.AssetSelection.assets(spec.names.key("champion_model")),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Re-decides `{spec.name}`'s candidate in its shadow trial each time new request "
            f"rows are ingested: promoted once >= {shadow.min_rows} rows were compared with "
            f"the champion and they decided alike on >= {shadow.min_agreement:.0%}, else "
            "rejected."
        ),
    )
    def shadow_gate(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        request = open_trial_request(context.instance, spec)
        if request is None:
            return dg.SkipReason("no shadow trial waiting on new request rows")
        return dg.SensorResult(run_requests=[request])

    return shadow_gate
