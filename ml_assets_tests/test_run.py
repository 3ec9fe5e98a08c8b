"""End to end: the main job (`make run`) on real flights data, shortened to three months.

The repo's spec with a shorter year (Jan-Mar 2013) and a smaller search, so the whole replay
(data layers, initial training, monthly monitoring, retrain decisions) runs in a test's time.
`make run` itself runs the full year.
"""

import json
import re
import shutil

import duckdb
import pytest
import yaml

from ml_assets import run, settings
from ml_assets.core.spec import load_spec, read_spec_mapping
from ml_assets.layers.ingest.files import resolve_source, sha256
from ml_assets.provenance import main as provenance_main
from ml_assets.provenance import prediction_provenance
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.conftest import FLIGHTS_SPEC, REPO

# Slow tier (the main job end to end): `make test` runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow


def test_main_job_replays_the_graph_end_to_end(
    home, monkeypatch, capsys: pytest.CaptureFixture
) -> None:
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw["partitions"]["end"] = "2013-03-31"
    raw["features"]["sql"] = [str(FLIGHTS_SPEC.parent / p) for p in raw["features"]["sql"]]
    raw["training"].update({"window_days": 40, "search": {"method": "random", "budget": 1}})
    # The first 40 days hold the Feb 8-9 blizzard in their test split: a lower floor here.
    raw["evaluation"]["floor"] = 0.55
    specs = home / "specs"
    specs.mkdir()
    (specs / "flights.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    dagster_home = home / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("ML_ASSETS_SPECS", str(specs))

    assert run.main() == 0
    out = capsys.readouterr().out
    # January-March 2013: 27,004 + 24,951 + 28,834 flights.
    assert re.search(r"flights/raw +80,789 rows over 90 partition", out), out
    assert "row_conservation             PASS" in out
    assert "initial training up to 2013-02-09: promoted" in out
    for month in ("2013-02", "2013-03"):
        assert f"  {month}: monitored" in out
    assert "model decisions" in out and "promoted  v1" in out

    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        raw_rows, valid, quarantined = conn.execute(
            """SELECT (SELECT count(*) FROM flights.raw), (SELECT count(*) FROM flights.validated),
                      (SELECT count(*) FROM flights.quarantine)"""
        ).fetchone()
        scored, featured = conn.execute(
            """SELECT (SELECT count(*) FROM flights.predictions),
                      (SELECT count(*) FROM flights.features WHERE _partition_date > DATE '2013-02-09')"""
        ).fetchone()
        drift_days = conn.execute("SELECT count(DISTINCT day) FROM flights.drift").fetchone()[0]
        perf_days = conn.execute("SELECT count(*) FROM flights.performance").fetchone()[0]
        decisions = conn.execute("SELECT decision FROM governance.model_decisions").fetchall()
    assert raw_rows == valid + quarantined
    assert scored == featured > 0  # every day after the initial training window is scored
    assert drift_days == perf_days == 50  # 2013-02-10 .. 2013-03-31
    assert decisions[0] == ("promoted",)
    assert (settings.reports_dir() / "flights" / "model_card.md").exists()
    assert list((settings.reports_dir() / "flights" / "drift").glob("drift_*.html"))

    # One prediction's full lineage chain, every hop checked against its source of truth.
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        key, day = conn.execute(
            "SELECT _key, _partition_date FROM flights.predictions ORDER BY _key LIMIT 1 OFFSET 500"
        ).fetchone()
        chain = prediction_provenance(conn, MlflowTracking(), "flights", key, day)
    version = (
        MlflowTracking()
        .client()
        .get_model_version(chain["model"]["name"], chain["model"]["version"])
    )
    assert chain["mlflow_run"]["run_id"] == version.run_id
    assert chain["training_data"]["data_version"] == version.tags["data_version"]
    _, last = chain["training_data"]["window"].split("..")
    assert last < day.isoformat()  # trained only on days before the one it scored
    assert chain["features"]["_partition_date"] == chain["validated"]["_partition_date"] == day
    (bundled,) = resolve_source(load_spec(FLIGHTS_SPEC).source)
    assert (
        chain["raw"]["_source_checksum"] == chain["source_file"]["checksum"] == sha256(bundled.path)
    )
    assert chain["raw"]["_source_row"] == chain["validated"]["_source_row"]
    # Why it got its score: the explanation stored with the prediction, in log-odds.
    why = chain["explanation"]
    assert (why["_key"], why["_partition_date"]) == (key, day)
    assert why["model_version"] == chain["model"]["version"]
    methods = {"xgboost": "tree_shap", "linear": "coef_x_standardized"}
    assert why["method"] == methods[chain["model"]["family"]]
    assert why["margin_units"] == "log_odds" and len(why["top_contributions"]) == 5
    picked = sum(t["contribution"] for t in why["top_contributions"])
    assert why["base_margin"] + picked + why["other_contribution"] == pytest.approx(
        why["raw_margin"], abs=1e-9
    )
    # The CLI prints the same chain as JSON.
    assert provenance_main(["flights", key, "--day", day.isoformat()]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["source_file"]["checksum"] == chain["source_file"]["checksum"]
    assert printed["explanation"]["top_contributions"] == why["top_contributions"]
