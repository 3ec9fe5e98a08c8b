"""Gated promotion, rejection and rollback on a real MLflow registry, audited in real DuckDB."""

import dataclasses
import datetime as dt

import duckdb
import mlflow
import pytest

from ml_assets.core.predictor import CHAMPION, current_champion
from ml_assets.layers.evaluate.compare import compare
from ml_assets.layers.evaluate.explain import global_importance
from ml_assets.layers.evaluate.gates import GateResult, gate_results, verdict
from ml_assets.layers.evaluate.metrics import Metrics, evaluate_predictions
from ml_assets.layers.evaluate.slices import slice_metrics
from ml_assets.layers.promote.audit import decisions
from ml_assets.layers.promote.decide import decide, rollback_and_record
from ml_assets.layers.promote.registry import PromotionRefused, promote, rollback
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.layers.evaluate.synthetic import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    binary_frame,
    fit_linear,
    scores,
    skill_of,
)
from ml_assets_tests.layers.promote.conftest import MODEL_NAME, register

TRAIN, TEST = binary_frame(5_000, seed=21), binary_frame(3_000, seed=22)
Y = TEST["y"].to_numpy()


def evaluate(model, champion, section) -> tuple[Metrics, list[GateResult]]:
    s = scores(model, TEST)
    m = evaluate_predictions(Y, s, "binary", 0.5)
    champ = evaluate_predictions(Y, scores(champion, TEST), "binary") if champion else None
    slices = slice_metrics(TEST, ["segment"], Y, s, "binary", section.metric, 200)
    comparison = compare(m, champ, section.metric, section.non_inferiority_tolerance)
    skill = skill_of(m, TRAIN["y"].to_numpy(), Y)
    return m, gate_results(m, comparison, slices, skill, section)


def version_tags(tracking: MlflowTracking, version: str) -> dict[str, str]:
    return tracking.client().get_model_version(MODEL_NAME, version).tags


def run_decide(tracking, warehouse, version, metrics, gates, trigger="initial"):
    return decide(
        tracking,
        warehouse,
        dataset="synthetic",
        model_name=MODEL_NAME,
        candidate_version=version,
        gates=gates,
        metrics=metrics,
        trigger=trigger,
        code_version="code-1",
        dagster_run_id="run-1",
    )


def test_promote_reject_rollback_with_audit(tracking, warehouse, flights_spec) -> None:
    section = flights_spec.evaluation
    assert current_champion(tracking, MODEL_NAME) is None  # nothing registered yet

    # v1, the first candidate: no champion, so non-inferiority passes and it is promoted.
    small = fit_linear(TRAIN, ["a"], ["c"])
    v1 = register(tracking, small, "linear", ["a", "c"], ["c"]).ref.version
    m1, g1 = evaluate(small, None, section)
    d1 = run_decide(tracking, warehouse, v1, m1, g1)
    assert d1.decision == "promoted" and d1.previous_champion_version is None
    assert current_champion(tracking, MODEL_NAME) == v1 == "1"
    assert "promoted_at" in version_tags(tracking, v1)

    # v2, worse than the champion: rejected, alias unchanged, tags say why.
    worse = fit_linear(TRAIN, ["a"], [])
    v2 = register(tracking, worse, "linear", ["a"]).ref.version
    m2, g2 = evaluate(worse, small, section)
    d2 = run_decide(tracking, warehouse, v2, m2, g2, trigger="drift:2013-07-01:drift_share")
    assert d2.decision == "rejected" and d2.new_champion_version == v1
    assert current_champion(tracking, MODEL_NAME) == v1
    tags = version_tags(tracking, v2)
    assert tags["rejected"] == "true" and "non_inferiority" in tags["rejection_reason"]
    assert "promoted_at" not in tags
    # Still registered and loadable: a rejection keeps the evidence.
    assert mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/{v2}").predict_proba(TEST[["a"]]).shape

    # v3, better: promoted; v1 is superseded.
    better = fit_linear(TRAIN, NUMERIC, CATEGORICAL)
    v3 = register(tracking, better, "linear", FEATURES, ["c"]).ref.version
    m3, g3 = evaluate(better, small, section)
    d3 = run_decide(tracking, warehouse, v3, m3, g3)
    assert d3.decision == "promoted" and (
        d3.previous_champion_version,
        d3.new_champion_version,
    ) == (
        v1,
        v3,
    )
    assert current_champion(tracking, MODEL_NAME) == v3
    assert version_tags(tracking, v1)["superseded_by"] == v3
    assert version_tags(tracking, v3)["previous_champion"] == v1
    model = tracking.client().get_registered_model(MODEL_NAME)
    assert {str(v) for a, v in model.aliases.items() if a == CHAMPION} == {v3}

    # Rollback without a target restores the previous champion, and is audited.
    d4 = rollback_and_record(
        tracking,
        warehouse,
        dataset="synthetic",
        model_name=MODEL_NAME,
        to_version=None,
        reason="v3 misbehaves in production",
        trigger="manual",
        code_version="code-1",
        dagster_run_id="run-2",
    )
    assert current_champion(tracking, MODEL_NAME) == v1
    assert (d4.previous_champion_version, d4.new_champion_version) == (v3, v1)
    assert version_tags(tracking, v3)["rollback_reason"] == "v3 misbehaves in production"

    # v1 replaced nothing, so there is nowhere further back; a rejected version is no target.
    with pytest.raises(PromotionRefused, match="no previous champion"):
        rollback(tracking, MODEL_NAME, None, "again")
    with pytest.raises(PromotionRefused, match="was rejected"):
        rollback(tracking, MODEL_NAME, v2, "try the rejected one")
    assert current_champion(tracking, MODEL_NAME) == v1

    # Every decision is one appended row, in order, with its gates and metrics.
    rows = decisions(warehouse, "synthetic")
    assert [r.decision for r in rows] == ["promoted", "rejected", "promoted", "rollback"]
    assert [r.candidate_version for r in rows] == [v1, v2, v3, v1]
    assert [r.decision_id for r in rows] == [
        d1.decision_id,
        d2.decision_id,
        d3.decision_id,
        d4.decision_id,
    ]
    assert rows[1].trigger == "drift:2013-07-01:drift_share"
    checks = {c["name"]: c for c in rows[1].checks}
    assert checks["non_inferiority"]["passed"] is False and checks["non_inferiority"]["blocking"]
    assert rows[1].metrics["roc_auc"] == pytest.approx(m2["roc_auc"])
    assert rows[3].checks == [] and rows[3].reason == "v3 misbehaves in production"
    assert all(r.decided_at.tzinfo is not None for r in rows)


def test_refused_moves_leave_registry_and_audit_unchanged(
    tracking, warehouse, flights_spec
) -> None:
    section = flights_spec.evaluation
    good = fit_linear(TRAIN, NUMERIC, CATEGORICAL)
    v1 = register(tracking, good, "linear", FEATURES, ["c"]).ref.version
    m1, g1 = evaluate(good, None, section)
    run_decide(tracking, warehouse, v1, m1, g1)

    # A leaky candidate: near-perfect AUC fails the leakage guard and is rejected.
    leaky = fit_linear(TRAIN, ["a", "leak"], ["c"])
    v2 = register(tracking, leaky, "linear", ["a", "leak", "c"], ["c"]).ref.version
    m2, g2 = evaluate(leaky, good, section)
    assert m2["roc_auc"] > section.leakage_ceiling
    with pytest.raises(PromotionRefused, match="leakage_guard"):
        promote(tracking, MODEL_NAME, v2, verdict(g2))
    assert current_champion(tracking, MODEL_NAME) == v1
    assert "promoted_at" not in version_tags(tracking, v2)

    # A registry failure (no such version) rolls back the audit INSERT: no row claims a move.
    before = len(decisions(warehouse, "synthetic"))
    with pytest.raises(PromotionRefused, match="no version '99'"):
        run_decide(tracking, warehouse, "99", m1, g1)
    assert len(decisions(warehouse, "synthetic")) == before == 1

    d = run_decide(tracking, warehouse, v2, m2, g2)
    assert d.decision == "rejected" and "leakage_guard" in d.reason
    assert version_tags(tracking, v2)["rejected"] == "true"
    assert current_champion(tracking, MODEL_NAME) == v1
    # Should a rejected version later pass its gates, promotion clears the rejection tags (the
    # audit table keeps the rejection) and records where a rollback would return to.
    promote(tracking, MODEL_NAME, v2, verdict(g1))
    tags = version_tags(tracking, v2)
    assert "rejected" not in tags and "rejection_reason" not in tags
    assert tags["previous_champion"] == v1 and current_champion(tracking, MODEL_NAME) == v2


def test_audit_survives_reopening_and_rollback_to_explicit_version(
    tracking, warehouse, flights_spec
) -> None:
    section = flights_spec.evaluation
    versions = []
    champion = None
    for cols in ((["a"], []), (["a"], ["c"]), (NUMERIC, CATEGORICAL)):
        model = fit_linear(TRAIN, *cols)
        v = register(tracking, model, "linear", cols[0] + cols[1], cols[1]).ref.version
        m, g = evaluate(model, champion, section)
        assert run_decide(tracking, warehouse, v, m, g).decision == "promoted"
        versions.append(v)
        champion = model
    rollback_and_record(
        tracking,
        warehouse,
        dataset="synthetic",
        model_name=MODEL_NAME,
        to_version=versions[0],
        reason="back to the first",
        trigger="manual",
        code_version="code-1",
        dagster_run_id="run-3",
    )
    assert current_champion(tracking, MODEL_NAME) == versions[0]
    path = warehouse.execute("PRAGMA database_list").fetchall()[0][2]
    warehouse.close()
    with duckdb.connect(path, read_only=True) as conn:
        rows = decisions(conn, "synthetic")
    assert [(r.decision, r.new_champion_version) for r in rows] == [
        ("promoted", "1"),
        ("promoted", "2"),
        ("promoted", "3"),
        ("rollback", "1"),
    ]
    assert rows[3].previous_champion_version == "3"
    assert rows[0].decided_at < rows[3].decided_at <= dt.datetime.now(dt.UTC)


def test_importance_of_models_loaded_from_mlflow(tracking) -> None:
    import xgboost as xgb

    frame = TRAIN[FEATURES].astype({"c": "category"})
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 0},
        xgb.DMatrix(frame, label=TRAIN["y"], enable_categorical=True),
        num_boost_round=20,
    )
    xref = register(tracking, booster, "xgboost", FEATURES, ["c"]).ref
    loaded = mlflow.xgboost.load_model(xref.uri)
    assert isinstance(loaded, xgb.Booster)
    test = TEST[FEATURES].astype({"c": "category"})
    assert global_importance(loaded, xref.family, test) == pytest.approx(
        global_importance(booster, "xgboost", test)
    )
    pipe = fit_linear(TRAIN, NUMERIC, CATEGORICAL)
    lref = register(tracking, pipe, "linear", FEATURES, ["c"]).ref
    imp = global_importance(mlflow.sklearn.load_model(lref.uri), lref.family, TEST[FEATURES])
    assert imp == pytest.approx(global_importance(pipe, "linear", TEST[FEATURES]))
    assert set(imp) == set(FEATURES)


def test_alias_never_moves_on_a_failed_blocking_gate(tracking, warehouse, flights_spec) -> None:
    """Each blocking gate alone rejects: the champion stays, the version is tagged, audited."""
    section = flights_spec.evaluation
    model = fit_linear(TRAIN, NUMERIC, CATEGORICAL)
    v1 = register(tracking, model, "linear", FEATURES, ["c"]).ref.version
    m1, g1 = evaluate(model, None, section)
    assert run_decide(tracking, warehouse, v1, m1, g1).decision == "promoted"
    m, gates = evaluate(model, model, section)
    blocking = [g.name for g in gates if g.blocking]
    assert blocking == [
        "metric_floor",
        "non_inferiority",
        "slice_gap",
        "leakage_guard",
        "baseline_skill",
    ]
    assert all(g.passed for g in gates if g.blocking)  # the same model: every gate passes...
    for failing in blocking:
        version = register(tracking, model, "linear", FEATURES, ["c"]).ref.version
        broken = [dataclasses.replace(g, passed=False) if g.name == failing else g for g in gates]
        decision = run_decide(tracking, warehouse, version, m, broken)  # ...until one fails
        assert decision.decision == "rejected" and failing in decision.reason
        assert current_champion(tracking, MODEL_NAME) == v1
        assert version_tags(tracking, version)["rejected"] == "true"
    assert [d.decision for d in decisions(warehouse, "synthetic")] == ["promoted"] + [
        "rejected"
    ] * len(blocking)
