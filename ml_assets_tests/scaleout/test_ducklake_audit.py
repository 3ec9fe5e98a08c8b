"""The promote layer's audit table on the multi-writer warehouse: DuckLake has no sequences,
PRIMARY KEYs or CHECK constraints, so the decisions are numbered by the inserting statement
(real PostgreSQL catalog, real DuckLake, several deciding processes at once)."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os

import pytest

from ml_assets.layers.promote.audit import Decision, decisions, record_decision
from ml_assets_tests.scaleout.test_ducklake_warehouse import ducklake

PROCESSES = 3
EACH = 4


def decision(dataset: str, kind: str, version: str) -> Decision:
    return Decision(
        dataset=dataset,
        model_name=f"{dataset}_model",
        decision=kind,  # type: ignore[arg-type]
        reason="test",
        candidate_version=version,
        previous_champion_version=None,
        new_champion_version=version if kind == "promoted" else None,
        trigger="manual",
        code_version="test",
        dagster_run_id=f"run-{dataset}-{version}",
        decided_at=dt.datetime.now(dt.UTC),
        metrics={"roc_auc": 0.71, "nan": float("nan")},
        checks=[{"gate": "metric_floor", "passed": kind == "promoted"}],
    )


def test_decisions_are_numbered_and_read_back_on_ducklake(ducklake_env) -> None:
    warehouse = ducklake(ducklake_env)
    with warehouse.get_connection() as conn:
        first = record_decision(conn, decision("lake_a", "promoted", "1"))
        second = record_decision(conn, decision("lake_a", "rejected", "2"))
        with pytest.raises(ValueError, match="decision must be one of"):
            record_decision(conn, decision("lake_a", "archived", "3"))
        got = decisions(conn, "lake_a")
    assert (first, second) == (1, 2)
    assert [(d.decision_id, d.decision, d.candidate_version) for d in got] == [
        (1, "promoted", "1"),
        (2, "rejected", "2"),
    ]
    assert got[0].metrics == {"roc_auc": 0.71, "nan": None}
    assert got[1].checks == [{"gate": "metric_floor", "passed": False}]


def decide_many(env: dict[str, str], dataset: str, barrier, results) -> None:
    """A deciding process: EACH decisions, each started together with the other processes'."""
    os.environ.update(env)
    ids = []
    with ducklake(env).get_connection() as conn:
        for i in range(EACH):
            barrier.wait(timeout=300)
            ids.append(record_decision(conn, decision(dataset, "promoted", str(i + 1))))
        results.put((dataset, ids, conn.conflict_retries))


def test_decisions_recorded_at_once_by_several_processes_get_distinct_ids(ducklake_env) -> None:
    """Promotions of different datasets deciding at the same moment: every row lands once, and
    no two share a decision_id (the embedded file's PRIMARY KEY has no DuckLake counterpart)."""
    warehouse = ducklake(ducklake_env)
    with warehouse.get_connection() as conn:  # the table exists before the race
        record_decision(conn, decision("lake_setup", "promoted", "1"))
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    names = [f"lake_{i}" for i in range(PROCESSES)]
    procs = [
        ctx.Process(target=decide_many, args=(ducklake_env, name, barrier, results))
        for name in names
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    with warehouse.get_connection() as conn:
        rows = conn.execute(
            "SELECT decision_id, dataset, candidate_version FROM governance.model_decisions"
        ).fetchall()
    assert len(rows) == 1 + PROCESSES * EACH
    ids = [r[0] for r in rows]
    assert sorted(ids) == list(range(1, len(rows) + 1)), "decision ids collided or skipped"
    assert sum(n for _, _, n in reports) > 0, "no decision conflicted: the race was not run"
    returned = sorted(i for _, got, _ in reports for i in got)
    assert returned == list(range(2, len(rows) + 1))
    for name in names:  # each dataset's decisions in the order it made them
        with warehouse.get_connection() as conn:
            assert [d.candidate_version for d in decisions(conn, name)] == ["1", "2", "3", "4"]
