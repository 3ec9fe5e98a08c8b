"""The benchmark harness keeps working: its --quick smoke mode, end to end, into a temp dir.

No timing is asserted (timings belong to `make bench`, not to the test suite). What is asserted is
what makes the numbers mean something: every figure has its baseline and ratio, and each
baseline did the same work as the graph (same rows, same feature values).
"""

import json
from pathlib import Path

import pytest

from benchmarks.run import main
from ml_assets.core.spec import load_spec
from ml_assets_tests.conftest import FLIGHTS_SPEC

MEASURED_IN_QUICK = (
    "backfill_1x",
    "incremental_day",
    "drift",
    "training_overhead",
    "scoring_throughput",
    "orchestration_floor",
    "many_small_partitions",
    "stream_throughput",
    "stream_freshness",
)
# A latency with no bare equivalent: reported against its goal, without a baseline.
WITHOUT_BASELINE = ("stream_freshness",)

# Slow tier (the benchmark harness in quick mode): `make test` runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow
SKIPPED_IN_QUICK = ("backfill_10x", "peak_memory_10x")


def test_quick_mode_writes_results_whose_baselines_did_the_same_work(tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert main(["--quick", "--out", str(out), "--workdir", str(tmp_path / "work")]) == 0
    # The scratch folder is removed afterwards: a benchmark leaves only its results.
    assert not (tmp_path / "work").exists()

    results = json.loads((out / "results.json").read_text())
    machine = results["machine"]
    assert machine["cpu_count"] >= 1 and machine["memory_gib"] > 0
    assert len(machine["load_average"]) == 3
    for package in ("duckdb", "dagster", "pandas", "xgboost"):
        assert machine["packages"][package]
    assert results["settings"]["quick"] is True
    assert results["total_wall_s"] > 0

    figures = results["figures"]
    assert list(figures) == [
        "backfill_1x",
        "backfill_10x",
        "incremental_day",
        "drift",
        "training_overhead",
        "scoring_throughput",
        "peak_memory_10x",
        "orchestration_floor",
        "many_small_partitions",
        "stream_throughput",
        "stream_freshness",
    ]
    for name, fig in figures.items():
        if fig["status"] != "measured":
            # Only the 10x figures sit out quick mode.
            assert name in SKIPPED_IN_QUICK and fig["status"] == "skipped in --quick mode", (
                name,
                fig,
            )
            continue
        assert fig["median_s"] > 0 and len(fig["runs"]) >= 1
        assert fig["goal"] and fig["meets_goal"] in (True, False, None)
        if name in WITHOUT_BASELINE:
            assert fig["baseline"] is None, name
            continue
        assert fig["baseline"]["median_s"] > 0 and fig["baseline"]["runs"]
        assert fig["ratio"] > 0
        assert fig["meets_goal"] in (True, False, None)
    assert all(figures[name]["status"] == "measured" for name in MEASURED_IN_QUICK)

    backfill = figures["backfill_1x"]["details"]
    rows = backfill["rows"]
    graph = rows["graph"]
    assert graph["raw"] == graph["validated"] + graph["quarantine"]
    # 2013-01-01..07 holds thousands of flights; every side kept and featurized the same ones.
    assert graph["validated"] > 5000
    for side in ("duckdb", "pandas"):
        assert rows[side] == {"validated": graph["validated"], "features": graph["features"]}
    for comparison in backfill["verification"].values():
        assert comparison["agree"], comparison
        assert comparison["rows_matched"] == graph["features"]
        # Every declared feature, the same-day departure delays included.
        assert (
            comparison["features_compared"] == len(load_spec(FLIGHTS_SPEC).features.columns) == 29
        )
    assert backfill["verified"] is True

    assert figures["incremental_day"]["details"]["verified"] is True
    assert figures["orchestration_floor"]["details"]["verified"] is True
    # 60 one-row days in quick mode (5,698 in `make bench`), from `ml-assets init`'s spec; both
    # sides kept the same rows in every layer, day by day, value by value.
    partitions = figures["many_small_partitions"]["details"]
    assert partitions["days"] == 60 and partitions["verified"] is True
    rows = partitions["rows"]["graph"]
    assert rows == partitions["rows"]["duckdb"]
    assert rows["raw"] == 60 == rows["validated"] + rows["quarantine"] and rows["quarantine"] > 0
    assert partitions["events_per_partition"] < 14  # 12 a day, plus the run's own
    drift = figures["drift"]["details"]
    assert drift["verdicts_agree"] and drift["drifted_ours"] == drift["drifted_evidently"]

    table = (out / "results.md").read_text()
    assert "| figure | ours | baseline | ratio | goal | met |" in table
    for fig in figures.values():
        assert fig["title"] in table


def test_a_scaled_copy_runs_its_source_datasets_hand_written_features() -> None:
    """`scale.py` names the 10x copy `flights_x10`; the bare script must still find flights' SQL
    (the 10x figures are not in --quick, so only this catches a miss before `make bench`)."""
    from benchmarks.bare_duckdb import feature_sql

    flights = load_spec(FLIGHTS_SPEC)
    scaled = flights.model_copy(update={"name": "flights_x10"})
    assert feature_sql(scaled) == feature_sql(flights)
    assert "validated" in feature_sql(scaled)
