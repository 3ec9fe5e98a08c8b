"""The audit table: created on first use, append-only, strict JSON, readable back."""

import dataclasses
import datetime as dt
import json
import math

import pytest

from ml_assets.layers.promote.audit import Decision, decisions, record_decision

AT = dt.datetime(2013, 7, 2, 6, 0, tzinfo=dt.UTC)


def decision(**changes) -> Decision:
    base = Decision(
        dataset="flights",
        model_name="flights_arrival_delay",
        decision="rejected",
        reason="failed blocking gates: metric_floor",
        candidate_version="4",
        previous_champion_version="3",
        new_champion_version="3",
        trigger="drift:2013-07-01:drift_share",
        code_version="abc123",
        dagster_run_id="run-x",
        decided_at=AT,
        metrics={"roc_auc": 0.61, "pr_auc": math.nan},
        checks=[{"name": "metric_floor", "passed": False, "blocking": True, "observed": 0.61}],
    )
    return dataclasses.replace(base, **changes)


def test_append_only_round_trip(warehouse) -> None:
    assert decisions(warehouse, "flights") == []  # no table yet: no decisions, no error
    first = record_decision(warehouse, decision())
    snapshot = warehouse.execute("SELECT * FROM governance.model_decisions").fetchall()
    second = record_decision(
        warehouse,
        decision(
            decision="promoted", new_champion_version="4", decided_at=AT + dt.timedelta(hours=1)
        ),
    )
    record_decision(warehouse, decision(dataset="orders"))
    assert second > first
    # Earlier rows are untouched by later appends.
    assert (
        warehouse.execute(
            "SELECT * FROM governance.model_decisions WHERE decision_id = ?", [first]
        ).fetchall()
        == snapshot
    )
    rows = decisions(warehouse, "flights")
    assert [r.decision for r in rows] == ["rejected", "promoted"]
    assert rows[0].metrics == {"roc_auc": 0.61, "pr_auc": None}  # NaN stored as JSON null
    assert rows[0].checks[0]["observed"] == 0.61 and rows[0].decided_at == AT
    assert decisions(warehouse, "flights", model_name="other") == []
    # The JSON columns hold strict JSON that DuckDB itself can query.
    ((auc,),) = warehouse.execute(
        "SELECT metrics->>'roc_auc' FROM governance.model_decisions WHERE decision_id = ?", [first]
    ).fetchall()
    assert json.loads(auc) == 0.61


def test_bad_decisions_are_refused_without_a_row(warehouse) -> None:
    with pytest.raises(ValueError, match="decision must be one of"):
        record_decision(warehouse, decision(decision="archived"))
    with pytest.raises(ValueError, match="timezone-aware"):
        record_decision(warehouse, decision(decided_at=dt.datetime(2013, 7, 2)))
    assert decisions(warehouse, "flights") == []
