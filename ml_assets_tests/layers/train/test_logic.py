"""Pure training logic: windows, split checks, search draws, the model matrix, selection."""

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml_assets.core.matrix import FeatureSchema, fit_schema, model_matrix
from ml_assets.core.predictor import predict
from ml_assets.core.spec import SpecError
from ml_assets.layers.train.checks import split_problems
from ml_assets.layers.train.dataset import SplitIntegrity, plan_window, resolve_as_of
from ml_assets.layers.train.families import fit, grid, make_model, metrics
from ml_assets.layers.train.search import (
    TRIAL_WORKERS_ENV,
    Split,
    draw,
    search_family,
    trial_workers,
)
from ml_assets_tests.layers.train.conftest import synthetic_features, write_features, write_spec

D = dt.date


def test_window_splits_newest_days_into_test_then_validation(synth_spec) -> None:
    window = plan_window(D(2024, 2, 8), synth_spec.training, synth_spec)
    # window_days 30, validation 7, test 7 (see conftest SPEC).
    assert window.days == 30
    assert window.bounds() == {
        "train": (D(2024, 1, 10), D(2024, 1, 25)),
        "validation": (D(2024, 1, 26), D(2024, 2, 1)),
        "test": (D(2024, 2, 2), D(2024, 2, 8)),
    }


def test_window_without_training_days_is_a_spec_error(home) -> None:
    spec = write_spec(home, "short", window_days=14)
    with pytest.raises(SpecError, match=r"short.yaml: field 'training.window_days': 14 leaves"):
        plan_window(D(2024, 2, 8), spec.training, spec)


def test_as_of_waits_for_labels_at_the_clock_or_the_data_frontier(synth_spec) -> None:
    conn = duckdb.connect()
    write_features(conn, "synth", synthetic_features("binary", days=40, rows_per_day=20))
    # Replay: the clock is far ahead; the last day (2024-02-09) has labels known on 02-10 at the
    # latest, after the frontier (midnight ending 02-09), so 02-08 is the newest labelled day.
    far = dt.datetime(2030, 1, 1)
    assert resolve_as_of(conn, synth_spec, None, far)[0] == D(2024, 2, 8)
    # Live: at noon on 02-05, day 02-04's evening labels (known 02-05 up to 22:00) are pending.
    noon = dt.datetime(2024, 2, 5, 12)
    assert resolve_as_of(conn, synth_spec, None, noon)[0] == D(2024, 2, 3)
    assert resolve_as_of(conn, synth_spec, "2024-02-01", far) == (
        D(2024, 2, 1),
        "requested in run config",
    )
    with pytest.raises(ValueError, match="as_of 2024-02-09 is after 2024-02-08"):
        resolve_as_of(conn, synth_spec, "2024-02-09", far)
    with pytest.raises(ValueError, match="as_of must be a date"):
        resolve_as_of(conn, synth_spec, "last tuesday", far)


def _split(name, first, last, rows=10, keys=10, nulls=0, values=2, lo=0.0, hi=1.0, shared=0):
    return SplitIntegrity(name, rows, keys, first, last, nulls, values, lo, hi, shared)


def test_split_problems_name_each_defect() -> None:
    sound = [
        _split("train", D(2024, 1, 1), D(2024, 1, 10)),
        _split("validation", D(2024, 1, 11), D(2024, 1, 12)),
        _split("test", D(2024, 1, 13), D(2024, 1, 14)),
    ]
    assert split_problems(sound, "binary") == []
    broken = [
        _split("train", D(2024, 1, 1), D(2024, 1, 11), shared=3),
        _split("validation", D(2024, 1, 11), D(2024, 1, 12), keys=9, values=1, hi=0.0),
    ]
    problems = split_problems(broken, "binary")
    assert "split 'test' has no rows" in problems
    assert "'train' ends 2024-01-11, not before 'validation' starts 2024-01-11" in problems
    assert "'validation' has 1 duplicate keys" in problems
    assert any(p.startswith("'validation' needs both labels") for p in problems)
    assert "3 keys appear in more than one split" in problems
    # A regression label may take any values.
    assert (
        split_problems(
            [*sound[:2], _split("test", D(2024, 1, 13), D(2024, 1, 14), values=9, hi=7.5)],
            "regression",
        )
        == []
    )


def test_draws_are_reproducible_distinct_and_bounded() -> None:
    a = draw("xgboost", "binary", 6, seed=42)
    assert a == draw("xgboost", "binary", 6, seed=42)
    assert a != draw("xgboost", "binary", 6, seed=43)
    assert len({tuple(sorted(p.items())) for p in a}) == 6
    # A budget larger than the grid tries the whole grid once.
    assert len(draw("linear", "regression", 100, seed=1)) == len(grid("linear", "regression"))


def test_model_matrix_freezes_levels_and_maps_unseen_values_to_missing() -> None:
    declared = FeatureSchema(("x", "colour", "n"), ("colour",))
    train = pd.DataFrame({"x": [1, 2, None], "colour": ["red", None, "blue"], "n": [3, 4, 5]})
    schema = fit_schema(train, declared)
    assert schema.levels == {"colour": ("blue", "red")}
    assert FeatureSchema.from_dict(schema.to_dict()) == schema
    scoring = pd.DataFrame({"n": [1], "colour": ["green"], "x": ["7.5"], "_key": ["k"]}, index=[10])
    m = model_matrix(scoring, schema)
    assert list(m.columns) == ["x", "colour", "n"]  # model order, extra columns dropped
    assert m["x"].dtype == "float64" and m.loc[10, "x"] == 7.5
    assert pd.isna(m.loc[10, "colour"]) and list(m["colour"].cat.categories) == ["blue", "red"]
    with pytest.raises(ValueError, match=r"missing feature columns \['colour'\]"):
        model_matrix(scoring.drop(columns="colour"), schema)
    with pytest.raises(ValueError, match="feature column 'x' is numeric"):
        model_matrix(scoring.assign(x="seven"), schema)


def _splits(kind: str):
    frame = synthetic_features(kind, days=20, rows_per_day=150, seed=3)
    frame = frame[frame["_label"].notna()]
    declared = FeatureSchema(("load", "speed", "hour", "region", "size"), ("region", "size"))
    train_rows, valid_rows = frame.iloc[:2000], frame.iloc[2000:]
    schema = fit_schema(train_rows, declared)

    def split(rows):
        return Split(model_matrix(rows, schema), rows["_label"].to_numpy(), rows["_key"].to_numpy())

    return schema, split(train_rows), split(valid_rows)


@pytest.mark.parametrize(
    ("family", "method"), [("xgboost", "random"), ("linear", "random"), ("xgboost", "halving")]
)
def test_search_is_reproducible_and_keeps_the_best_trial(family, method) -> None:
    schema, train, valid = _splits("binary")
    runs = [
        search_family(family, "binary", schema, train, valid, method=method, budget=4, seed=5)
        for _ in range(2)
    ]
    assert runs[0].validation_metrics == runs[1].validation_metrics
    np.testing.assert_array_equal(runs[0].validation_pred, runs[1].validation_pred)
    full = [t for t in runs[0].trials if t.train_rows == len(train.y)]
    assert runs[0].validation_metrics["roc_auc"] == max(t.validation["roc_auc"] for t in full)
    assert runs[0].validation_metrics == metrics("binary", valid.y, runs[0].validation_pred)
    assert runs[0].validation_metrics["roc_auc"] > 0.7
    if method == "halving":
        # 4 draws: round 1 on a quarter, round 2 on half the rows, then the survivor on all.
        assert [t.train_rows for t in runs[0].trials] == [500] * 4 + [1000] * 2 + [2000]


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_linear_trials_sharing_one_column_step_are_whole_pipelines_fitted_alone(task) -> None:
    """The linear search fits its imputers/scaler/encoder once for every trial: each trial's
    model must still be the pipeline a fit of its own would give, coefficient for coefficient."""
    schema, train, valid = _splits(task)
    result = search_family("linear", task, schema, train, valid, method="random", budget=4, seed=5)
    assert len(result.trials) == 4
    for trial in result.trials:
        alone = fit(make_model("linear", task, trial.params, schema, 5), train.X, train.y)
        assert trial.validation == metrics(task, valid.y, predict(alone, task, valid.X))
    alone = fit(make_model("linear", task, result.params, schema, 5), train.X, train.y)
    np.testing.assert_array_equal(result.model.steps[-1][1].coef_, alone.steps[-1][1].coef_)
    np.testing.assert_array_equal(result.validation_pred, predict(alone, task, valid.X))


@pytest.mark.parametrize("method", ["random", "halving"])
def test_trials_side_by_side_are_the_trials_one_at_a_time(method, monkeypatch) -> None:
    """Fitting trials in threads must not change a trial, their order or the winner."""
    schema, train, valid = _splits("binary")

    def run(workers: str):
        monkeypatch.setenv(TRIAL_WORKERS_ENV, workers)
        return search_family(
            "xgboost", "binary", schema, train, valid, method=method, budget=4, seed=5
        )

    alone, side_by_side = run("1"), run("3")
    assert [(t.params, t.train_rows, t.validation) for t in side_by_side.trials] == [
        (t.params, t.train_rows, t.validation) for t in alone.trials
    ]
    assert side_by_side.params == alone.params
    np.testing.assert_array_equal(side_by_side.validation_pred, alone.validation_pred)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_trial_worker_count_is_refused_naming_the_variable(value, monkeypatch) -> None:
    monkeypatch.setenv(TRIAL_WORKERS_ENV, value)
    with pytest.raises(ValueError, match=TRIAL_WORKERS_ENV):
        trial_workers()
