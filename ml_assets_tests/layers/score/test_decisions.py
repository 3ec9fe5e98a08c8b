"""Scoring decides with the threshold stored with the version, never the spec's. Real DuckDB,
real MLflow: a version trained and registered by `model_candidate`, loaded from the registry."""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest

from ml_assets.core.predictor import load_predictor
from ml_assets.layers.score.logic import score_window
from ml_assets.layers.train.assets import build_train_assets
from ml_assets_tests.layers.train.conftest import load_features, make_store, write_spec

OLD_PREDICTIONS = """CREATE SCHEMA IF NOT EXISTS synth;
CREATE TABLE synth.predictions (
    _key VARCHAR NOT NULL, _event_time TIMESTAMP NOT NULL, _partition_date DATE NOT NULL,
    score DOUBLE NOT NULL, model_name VARCHAR NOT NULL, model_version VARCHAR NOT NULL,
    mlflow_run_id VARCHAR NOT NULL, feature_partition DATE NOT NULL,
    dagster_run_id VARCHAR NOT NULL, scored_at TIMESTAMPTZ NOT NULL
);
INSERT INTO synth.predictions VALUES ('old', '2024-01-02 08:00', '2024-01-02', 0.5, 'm', '0',
    'r', '2024-01-02', 'd', '2024-01-03 00:00:00+00');"""


def test_scoring_uses_the_threshold_stored_with_the_version(home: Path) -> None:
    store = make_store(home / "store")
    trained_spec = write_spec(home, "synth", models="[linear]")  # default policy: max_f1
    load_features(store, "synth", "binary", 40, 250)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            build_train_assets(trained_spec), instance=instance, resources=store.resources()
        )
    ref = result.output_for_node("synth__model_candidate")
    predictor = load_predictor(ref, store.tracking)
    stored = float(
        store.tracking.client()
        .get_model_version(ref.registered_name, ref.version)
        .tags["decision_threshold"]
    )
    assert predictor.threshold == stored and 0.05 < stored < 0.95

    # Whatever the spec now says (a fixed 0.9 here), the version decides with its own threshold.
    changed = write_spec(
        home / "later", "synth", models="[linear]", evaluation="{floor: 0.5, threshold: 0.9}"
    )
    assert changed.evaluation.threshold.value == 0.9
    with duckdb.connect(store.warehouse.database) as conn:
        conn.execute(OLD_PREDICTIONS)  # a table from before the decision columns
        written = score_window(
            conn,
            changed,
            predictor,
            dt.date(2024, 1, 5),
            dt.date(2024, 1, 9),
            run_id="score-run",
            scored_at=dt.datetime(2024, 1, 10, tzinfo=dt.UTC),
        )
        rows = conn.execute(
            "SELECT _key, score, decision, decision_threshold FROM synth.predictions "
            "WHERE _partition_date BETWEEN '2024-01-05' AND '2024-01-09' ORDER BY _key"
        ).df()
        old = conn.execute(
            "SELECT decision, decision_threshold FROM synth.predictions WHERE _key = 'old'"
        ).fetchone()
    assert written.rows == len(rows) == 5 * 250 and written.threshold == stored
    assert (rows["decision_threshold"] == stored).all()
    np.testing.assert_array_equal(rows["decision"].to_numpy(bool), rows["score"] >= stored)
    # The spec's 0.9 would have decided differently: the test can tell the two apart.
    assert (rows["decision"].to_numpy(bool) != (rows["score"] >= 0.9)).sum() > 100
    assert written.positive_rate == pytest.approx(rows["decision"].mean())
    assert old == (None, None)  # older rows keep NULL: they were never decided
