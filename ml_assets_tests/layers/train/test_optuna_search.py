"""`training.search.method: optuna`: TPE with pruning on boosting rounds, seeded and logged.

Pure search on synthetic splits (reproducibility, pruning, the search box), the spec accepting
the method, and one real `model_candidate` run whose trials land in the family's MLflow run.
"""

from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pytest

from ml_assets.core.predictor import load_predictor
from ml_assets.core.spec import SpecError
from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.families import metrics, space
from ml_assets.layers.train.optuna_search import startup_trials
from ml_assets.layers.train.search import search_family
from ml_assets_tests.layers.train.conftest import load_features, make_store, write_spec
from ml_assets_tests.layers.train.test_logic import _splits


def _search(family: str, seed: int, budget: int = 8, kind: str = "binary"):
    schema, train, valid = _splits(kind)
    result = search_family(
        family, kind, schema, train, valid, method="optuna", budget=budget, seed=seed
    )
    return result, train, valid


def _inside(params: dict, family: str, task: str) -> bool:
    box = space(family, task)
    return set(params) == set(box) and all(
        box[k].low <= v <= box[k].high and (not box[k].integer or v == int(v))
        for k, v in params.items()
    )


def test_same_seed_same_trials_and_best_params_and_a_trial_is_pruned() -> None:
    first, _, valid = _search("xgboost", seed=5)
    again, _, _ = _search("xgboost", seed=5)
    assert first.params == again.params
    assert [t.to_dict() for t in first.trials] == [t.to_dict() for t in again.trials]
    np.testing.assert_array_equal(first.validation_pred, again.validation_pred)
    other, _, _ = _search("xgboost", seed=6)
    assert other.params != first.params  # the seed, not a constant, decides

    assert len(first.trials) == 8  # the budget counts trials, pruned ones included
    pruned = [t for t in first.trials if t.state == "pruned"]
    complete = [t for t in first.trials if t.state == "complete"]
    assert pruned and len(complete) >= 2  # the median needs two finished trials first
    for t in pruned:
        # Stopped after the warm-up, before its last round; no final metrics claimed.
        assert 50 <= t.rounds < t.params["n_estimators"] and t.validation == {}
        assert 0.5 < t.last_value < 1
    for t in complete:
        assert t.rounds == t.params["n_estimators"]
        assert t.last_value == t.validation["roc_auc"]
    assert first.validation_metrics["roc_auc"] == max(t.validation["roc_auc"] for t in complete)
    assert first.validation_metrics == metrics("binary", valid.y, first.validation_pred)
    assert first.validation_metrics["roc_auc"] > 0.8
    assert all(_inside(t.params, "xgboost", "binary") for t in first.trials)
    # The kept model is the best trial's, trained on the whole train split.
    assert first.model.get_booster().num_boosted_rounds() == first.params["n_estimators"]
    assert first.search["search_sampler"].startswith("TPESampler(seed=5")
    assert "MedianPruner" in first.search["search_pruner"]


def test_linear_family_is_searched_but_never_pruned() -> None:
    result, _, _ = _search("linear", seed=3, budget=5, kind="regression")
    assert [t.state for t in result.trials] == ["complete"] * 5
    assert result.validation_metrics["rmse"] == min(t.validation["rmse"] for t in result.trials)
    assert all(_inside(t.params, "linear", "regression") for t in result.trials)
    assert len({t.params["alpha"] for t in result.trials}) == 5
    assert result.search["search_pruner"].startswith("none")


@pytest.mark.parametrize(("budget", "startup"), [(1, 2), (3, 2), (8, 2), (12, 4), (60, 10)])
def test_tpe_leaves_random_startup_within_the_budget(budget: int, startup: int) -> None:
    assert startup_trials(budget) == startup


def test_spec_accepts_optuna_and_names_the_field_for_an_unknown_method(home: Path) -> None:
    spec = write_spec(home, "synth", method="optuna", budget=12)
    assert (spec.training.search.method, spec.training.search.budget) == ("optuna", 12)
    with pytest.raises(SpecError, match=r"field 'training.search.method': .*'optuna'"):
        write_spec(home, "synth", method="bayes")


def test_model_candidate_logs_optuna_trials_to_the_family_run(home: Path) -> None:
    store = make_store(home / "store")
    spec = write_spec(home, "synth", method="optuna", budget=8)
    load_features(store, "synth", "binary", days=40, rows_per_day=250)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            build_train_assets(spec), instance=instance, resources=store.resources()
        )
    assert result.success
    ref = result.output_for_node("synth__model_candidate")
    client = store.tracking.client()
    parent_id = client.get_model_version(ref.registered_name, ref.version).tags[
        "mlflow_parent_run_id"
    ]
    assert client.get_run(parent_id).data.params["search_method"] == "optuna"
    runs = {
        r.info.run_name: r
        for r in client.search_runs(
            [client.get_run(parent_id).info.experiment_id],
            f"tags.mlflow.parentRunId = '{parent_id}'",
        )
    }
    assert sorted(runs) == ["linear", "xgboost"]
    for family, run in runs.items():
        trials = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/search_trials.json")
        pruned_flags = client.get_metric_history(run.info.run_id, "trial_pruned")
        assert len(trials) == len(pruned_flags) == 8
        assert [m.value for m in pruned_flags] == [float(t["state"] == "pruned") for t in trials]
        assert run.data.metrics["search_trials"] == 8
        assert run.data.metrics["search_trials_pruned"] == sum(m.value for m in pruned_flags)
        complete = [t for t in trials if t["state"] == "complete"]
        finals = client.get_metric_history(run.info.run_id, "trial_validation_roc_auc")
        # Step-wise metrics only for the trials that finished, at their own trial number.
        assert [m.step for m in finals] == [i for i, t in enumerate(trials) if t["validation"]]
        best = max(t["validation"]["roc_auc"] for t in complete)
        assert run.data.metrics["validation_roc_auc"] == best
        assert run.data.tags["search_sampler"].startswith("TPESampler(seed=7")
        if family == "xgboost":
            assert run.data.metrics["search_trials_pruned"] >= 1
            assert all(
                t["rounds"] < t["params"]["n_estimators"] for t in trials if t not in complete
            )
    assert client.get_run(ref.run_id).info.run_name == ref.family
    # The registered winner loads back (no trial object travelled with it) and scores as logged.
    valid = store.frame("SELECT * FROM synth.training_set WHERE _split = 'validation'")
    served = load_predictor(ref, store.tracking).raw_predict(valid)
    scored = metrics("binary", valid["_label"].to_numpy(), served)
    assert scored["roc_auc"] == pytest.approx(
        runs[ref.family].data.metrics["validation_roc_auc"], abs=1e-12
    )
