"""The online gate: a candidate is promoted only after agreeing with the champion on real
request rows (real MLflow registry, real DuckDB warehouse, the service's log format ingested by
`online_requests`' own code)."""

import datetime as dt
import uuid

import dagster as dg

from ml_assets.automation.shadow_gate import open_trial_request
from ml_assets.core.predictor import CHALLENGER, current_champion
from ml_assets.core.spec import ShadowGateSection
from ml_assets.layers.evaluate.gates import GateResult
from ml_assets.layers.promote.audit import decisions
from ml_assets.layers.promote.decide import decide
from ml_assets.layers.promote.shadow import GATE, RequestsTable
from ml_assets.layers.requests.ingest import ingest_window
from ml_assets.layers.requests.log import write_batch
from ml_assets_tests.layers.evaluate.synthetic import binary_frame, fit_linear
from ml_assets_tests.layers.promote.conftest import MODEL_NAME, register

DAY = dt.date(2013, 12, 31)
GATE_SPEC = ShadowGateSection(min_rows=400, min_agreement=0.9)
TRAIN = binary_frame(2_000, seed=5)
PASSED = [GateResult("metric_floor", True, True, 0.8, ">= 0.6", "")]


def _decide(tracking, warehouse, spec, version, *, shadow=GATE_SPEC, run="run-1"):
    return decide(
        tracking,
        warehouse,
        dataset="synthetic",
        model_name=MODEL_NAME,
        candidate_version=version,
        gates=PASSED,
        metrics={"roc_auc": 0.8},
        trigger="champion_model:stale@2013-12-31",
        code_version="code-1",
        dagster_run_id=run,
        shadow=shadow,
        requests=RequestsTable(spec.names.table("online_requests"), spec.name),
    )


def _log(spec, warehouse, *, champion, shadow, rows, agreeing, served_by="champion") -> None:
    """`rows` request rows as the service logs them, `agreeing` of them decided alike; then the
    day ingested into the warehouse as the `online_requests` asset does."""
    received = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
    records = [
        {
            "request_id": uuid.uuid4().hex,
            "received_at": received,
            "day": DAY.isoformat(),
            "dataset": spec.name,
            "key": f"k{uuid.uuid4().hex}",
            "event_time": f"{DAY.isoformat()}T10:00:00",
            "model_name": MODEL_NAME,
            "model_version": champion,
            "served_by": served_by,
            "canary_fallback": False,
            "fields": {},
            "score": 0.7,
            "decision": True,
            "decision_threshold": 0.5,
            "latency_ms": 3.0,
            "request_rows": 1,
            "shadow_model_version": shadow,
            "shadow_score": 0.7 if i < agreeing else 0.2,
            "shadow_decision": i < agreeing,
            "shadow_agree": i < agreeing,
        }
        for i in range(rows)
    ]
    write_batch(spec.name, records)
    ingest_window(warehouse, spec, DAY, DAY, run_id="ingest")


def _aliases(tracking) -> dict[str, str]:
    aliases = tracking.client().get_registered_model(MODEL_NAME).aliases
    return {alias: str(version) for alias, version in aliases.items()}


def test_a_candidate_waits_in_shadow_then_is_judged_on_agreement(
    tracking, warehouse, flights_spec
) -> None:
    model = fit_linear(TRAIN, ["a"], ["c"])
    v1, v2, v3 = (register(tracking, model, "linear", ["a", "c"], ["c"]).ref.version for _ in "123")
    # The first champion has nothing to be compared with: promoted on the offline gates.
    assert _decide(tracking, warehouse, flights_spec, v1).decision == "promoted"

    # v2 passed offline but replaces a champion: pending, `challenger`, nothing audited yet.
    pending = _decide(tracking, warehouse, flights_spec, v2)
    assert (pending.decision, pending.decision_id) == ("pending", None)
    assert pending.reason == f"in shadow: 0 of {GATE_SPEC.min_rows} rows compared"
    assert current_champion(tracking, MODEL_NAME) == v1
    assert _aliases(tracking)[CHALLENGER] == v2
    assert [d.decision for d in decisions(warehouse, "synthetic")] == ["promoted"]

    # Rows of another pair do not count; 300 of this pair are not enough.
    _log(flights_spec, warehouse, champion=v1, shadow=v3, rows=200, agreeing=0)
    _log(flights_spec, warehouse, champion=v1, shadow=v2, rows=300, agreeing=290)
    still = _decide(tracking, warehouse, flights_spec, v2, run="run-2")
    assert still.decision == "pending" and still.metrics["shadow_compared_rows"] == 300
    assert current_champion(tracking, MODEL_NAME) == v1

    # 300 + 150 canary rows (v2 answered, v1 in shadow): 450 >= 400, 435 alike: promoted.
    _log(
        flights_spec, warehouse, champion=v2, shadow=v1, rows=150, agreeing=145, served_by="canary"
    )
    done = _decide(tracking, warehouse, flights_spec, v2, run="run-3")
    assert done.decision == "promoted" and current_champion(tracking, MODEL_NAME) == v2
    audited = decisions(warehouse, "synthetic")[-1]
    gate = {c["name"]: c for c in audited.checks}[GATE]
    assert gate["passed"] and gate["observed"] == 435 / 450
    assert "shadow trial since" in audited.trigger
    # Decided once: deciding it again returns the audited decision, nothing new is written.
    assert _decide(tracking, warehouse, flights_spec, v2, run="run-4").decision_id == (
        done.decision_id
    )

    # v3 against champion v2: its trial starts now, so v3's earlier rows (against v1) do not
    # count; 400 rows of which 320 alike (80% < 90%): rejected, champion stays v2.
    assert _decide(tracking, warehouse, flights_spec, v3, run="run-5").decision == "pending"
    _log(flights_spec, warehouse, champion=v2, shadow=v3, rows=400, agreeing=320)
    rejected = _decide(tracking, warehouse, flights_spec, v3, run="run-6")
    assert rejected.decision == "rejected" and GATE in rejected.reason
    assert current_champion(tracking, MODEL_NAME) == v2
    assert [d.decision for d in decisions(warehouse, "synthetic")] == [
        "promoted",
        "promoted",
        "rejected",
    ]


def test_a_newer_candidate_ends_an_open_trial_as_superseded(
    tracking, warehouse, flights_spec
) -> None:
    model = fit_linear(TRAIN, ["a"], ["c"])
    v1, v2, v3 = (register(tracking, model, "linear", ["a", "c"], ["c"]).ref.version for _ in "123")
    assert _decide(tracking, warehouse, flights_spec, v1).decision == "promoted"
    assert _decide(tracking, warehouse, flights_spec, v2, run="run-2").decision == "pending"
    _log(flights_spec, warehouse, champion=v1, shadow=v2, rows=100, agreeing=90)

    # v3 passes offline before v2's trial is judged: v3 is on trial now, v2's trial ends.
    assert _decide(tracking, warehouse, flights_spec, v3, run="run-3").decision == "pending"
    assert _aliases(tracking)[CHALLENGER] == v3
    audited = decisions(warehouse, "synthetic")
    assert [(d.decision, d.candidate_version) for d in audited] == [
        ("promoted", v1),
        ("rejected", v2),
    ]
    ended = audited[-1]
    assert ended.reason.startswith(f"superseded in shadow by v{v3}")
    assert ended.metrics["shadow_compared_rows"] == 100 and ended.new_champion_version == v1
    gate = {c["name"]: c for c in ended.checks}[GATE]
    assert not gate["passed"] and gate["observed"] == 0.9
    assert current_champion(tracking, MODEL_NAME) == v1
    # Still deciding v3 ends nothing more; v3's own trial is judged on its own rows.
    _log(flights_spec, warehouse, champion=v1, shadow=v3, rows=400, agreeing=400)
    assert _decide(tracking, warehouse, flights_spec, v3, run="run-4").decision == "promoted"
    assert [d.candidate_version for d in decisions(warehouse, "synthetic")] == [v1, v2, v3]


def test_without_the_gate_a_passing_candidate_is_promoted_at_once(
    tracking, warehouse, flights_spec
) -> None:
    model = fit_linear(TRAIN, ["a"], ["c"])
    v1, v2 = (register(tracking, model, "linear", ["a", "c"], ["c"]).ref.version for _ in "12")
    assert _decide(tracking, warehouse, flights_spec, v1, shadow=None).decision == "promoted"
    assert _decide(tracking, warehouse, flights_spec, v2, shadow=None).decision == "promoted"
    assert current_champion(tracking, MODEL_NAME) == v2


def test_the_sensor_asks_for_a_decision_only_when_a_trial_is_open_and_the_log_grew(
    flights_spec,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    names = flights_spec.names
    champion, requests = names.key("champion_model"), names.key("online_requests")

    def report(event) -> None:
        instance.report_runless_asset_event(event)

    assert open_trial_request(instance, flights_spec) is None
    report(dg.AssetMaterialization(requests, partition=DAY.isoformat()))
    report(dg.AssetObservation(champion, metadata={"shadow_candidate": "2", "decision": "pending"}))
    assert open_trial_request(instance, flights_spec) is None  # no rows ingested since
    report(dg.AssetMaterialization(requests, partition=DAY.isoformat()))
    request = open_trial_request(instance, flights_spec)
    assert request is not None and request.asset_selection == [champion]
    assert request.tags["ml_assets/trigger"] == "shadow_trial:v2"
    # The run it asked for promoted the candidate: the trial is closed.
    report(dg.AssetMaterialization(champion))
    report(dg.AssetMaterialization(requests, partition=DAY.isoformat()))
    assert open_trial_request(instance, flights_spec) is None
