"""The main job (`make run`): its stages, its console, and its summary of every dataset.

End to end (slow tier): the repo's flights spec shortened to Jan-Mar 2013 with a smaller search,
beside a second dataset written by `ml-assets init` from a generated churn file, so the whole
replay of both (data layers, initial training, monthly monitoring, retrain decisions) runs in a
test's time. `make run` itself runs the full year. The fast tests pin the pieces: the replay
bound, the console's lines, the check summary, and that a failed run prints its error.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from ml_assets import cli, run, settings
from ml_assets.console import Console, library_logs_to
from ml_assets.core.spec import load_spec, read_spec_mapping
from ml_assets.layers.ingest import assets as ingest_assets
from ml_assets.layers.ingest.files import resolve_source, sha256
from ml_assets.provenance import main as provenance_main
from ml_assets.provenance import prediction_provenance
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.run_report import CheckOutcome, DatasetReport, check_lines
from ml_assets_tests.conftest import FLIGHTS_SPEC, REPO
from ml_assets_tests.test_init import write_churn_csv

STAGE = r"^  {name} +{window} +\d+\.\ds\s*{outcome}"


def flights_spec(specs: Path, end: str = "2013-03-31") -> None:
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw["partitions"]["end"] = end
    raw["features"]["sql"] = [str(FLIGHTS_SPEC.parent / p) for p in raw["features"].get("sql", [])]
    raw["training"].update({"window_days": 40, "search": {"method": "random", "budget": 1}})
    # The first 40 days hold the Feb 8-9 blizzard in their test split: a lower floor here.
    raw["evaluation"]["floor"] = 0.55
    specs.mkdir(exist_ok=True)
    (specs / "flights.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def dagster_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = home / "dagster_home"
    path.mkdir()
    shutil.copy(REPO / "dagster.yaml", path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(path))
    return path


def section(out: str, name: str) -> str:
    """One dataset's part of the console output."""
    start = out.index(f"\n== {name}:")
    end = out.find("\n== ", start + 1)
    return out[start : end if end > 0 else len(out)]


@pytest.mark.slow
def test_main_job_replays_every_dataset_end_to_end(
    home, monkeypatch, capsys: pytest.CaptureFixture
) -> None:
    specs = home / "specs"
    flights_spec(specs)
    churn = write_churn_csv(home / "data" / "input" / "churn.csv")
    assert (
        cli.main(["init", str(churn), "--name", "churn", "--label", "status", "--out", str(specs)])
        == 0
    )
    dagster_home(home, monkeypatch)
    monkeypatch.setenv("ML_ASSETS_SPECS", str(specs))
    capsys.readouterr()

    assert run.main() == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "ml_assets: 2 dataset(s)" in out and "churn, flights" in out
    flights, churn_out = section(out, "flights"), section(out, "churn")

    # One line per stage with its time, as each ends (the progress report in a log).
    window = r"2013-01-01\.\.2013-03-31"
    for name, window_, outcome in (
        ("data layers", window, "ok"),
        ("initial training", r"up to 2013-02-09", r"promoted v1"),
        ("replay 2013-02", r"19 days", r"(checks ok|\w+ (warned|failed))"),
        ("replay 2013-03", r"31 days", r"(checks ok|\w+ (warned|failed))"),
        ("total", "", ""),
    ):
        assert re.search(STAGE.format(name=name, window=window_, outcome=outcome), flights, re.M), (
            name,
            flights,
        )
    # January-March 2013: 27,004 + 24,951 + 28,834 flights.
    assert re.search(r"flights/raw +80,789 rows over 90 partition", flights), flights
    # Every check of every stage: the data layers' once, the gates per candidate, the monitors
    # per month.
    assert re.search(r"flights/validated +row_conservation +pass", flights)
    assert re.search(r"flights/model_evaluation +metric_floor +(pass|passed \d+ of \d+)", flights)
    assert re.search(r"flights/drift_report +severe_drift +passed \d of 2", flights)
    assert re.search(r"flights/performance +degradation +passed \d of 2", flights)
    assert "replayed: 2 month(s), 2013-02-10 .. 2013-03-31" in flights
    assert re.search(r"^    v1 +promoted +initial +champion v1", flights, re.M), flights
    # The second dataset gets the same summary: rows, checks, replay, decisions.
    assert re.search(r"churn/raw +3,000 rows over 60 partition", churn_out), churn_out
    assert re.search(r"churn/validated +row_conservation +pass", churn_out)
    assert re.search(r"^    v1 +promoted +initial", churn_out, re.M), churn_out
    # Decisions read as decisions; nothing is reported as an error, and no library chatter.
    assert "ERROR" not in out and "FAIL(" not in out and "error:" not in captured.err
    assert " - dagster - INFO - " not in captured.err, captured.err[-2000:]

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
        decisions = conn.execute(
            "SELECT dataset, decision FROM governance.model_decisions ORDER BY decision_id"
        ).fetchall()
    assert raw_rows == valid + quarantined
    assert scored == featured > 0  # every day after the initial training window is scored
    assert drift_days == perf_days == 50  # 2013-02-10 .. 2013-03-31
    assert ("flights", "promoted") in decisions and ("churn", "promoted") in decisions
    assert (settings.reports_dir() / "flights" / "model_card.md").exists()
    assert list((settings.reports_dir() / "flights" / "drift").glob("drift_*.html"))

    # The drift calibration is computed once per champion and reference window, then reused.
    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_materializations(
            dg.AssetKey(["flights", "drift_report"]), limit=1000
        ).records
    runs = {}  # one entry per monitoring run (its days share the run's metadata)
    for record in records:
        meta = record.asset_materialization.metadata
        runs[meta["partition_start"].value] = (
            (meta["model_version"].value, meta["reference_window"].value),
            meta["calibration_reused"].value,
        )
    assert len(runs) == 2
    seen: set[tuple[str, str]] = set()
    for _, (champion, reused) in sorted(runs.items()):
        assert reused == (champion in seen), (champion, runs)
        seen.add(champion)

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
    methods = {"xgboost": "saabas", "linear": "coef_x_standardized"}
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


@pytest.mark.slow
def test_make_run_exits_quietly(home, monkeypatch) -> None:
    """`python -m ml_assets.run` as `make run` starts it, on a small dataset with model layers:
    status 0 and nothing on stderr: no library chatter, and no `nanobind: leaked ...` report at
    interpreter exit (it appeared when Evidently was first imported after a model was logged)."""
    specs = home / "specs"
    churn = write_churn_csv(home / "data" / "input" / "churn.csv")
    assert (
        cli.main(["init", str(churn), "--name", "churn", "--label", "status", "--out", str(specs)])
        == 0
    )
    env = {
        **os.environ,
        "ML_ASSETS_HOME": str(home),
        "ML_ASSETS_SPECS": str(specs),
        "DAGSTER_HOME": str(dagster_home(home, monkeypatch)),
    }
    done = subprocess.run(
        [sys.executable, "-m", "ml_assets.run"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(
        STAGE.format(name="replay 2024-04", window="18 days", outcome=""), done.stdout, re.M
    )
    assert done.stderr == "", done.stderr[-3000:]


def test_a_failed_run_prints_its_error_and_exits_non_zero(
    home, orders_spec, monkeypatch, capsys: pytest.CaptureFixture
) -> None:
    """A real failure is not a decision: its error is printed and the exit status is 1."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(ingest_assets, "write_raw", broken)
    dagster_home(home, monkeypatch)
    monkeypatch.setenv("ML_ASSETS_SPECS", str(home / "specs"))
    assert run.main() == 1
    captured = capsys.readouterr()
    assert re.search(
        STAGE.format(name="data layers", window=r"\S+", outcome="FAILED"), captured.out, re.M
    )
    assert "ERRORS:" in captured.out and "the disk is on fire" in captured.out
    assert "error: orders: data layers: step orders__raw failed" in captured.err


def test_the_replay_bound_keeps_the_newest_months(flights_spec) -> None:
    first, last = dt.date(2013, 1, 1), dt.date(2013, 12, 31)
    whole = run.replay_plan(flights_spec, first, last)
    assert whole.as_of == dt.date(2013, 3, 31) and len(whole.months) == 9 and whole.skipped == 0
    bounded = run.replay_plan(flights_spec, first, last, limit=3)
    assert bounded.months == [
        (dt.date(2013, 10, 1), dt.date(2013, 10, 31)),
        (dt.date(2013, 11, 1), dt.date(2013, 11, 30)),
        (dt.date(2013, 12, 1), dt.date(2013, 12, 31)),
    ]
    # The first model learns the window just before the replayed months.
    assert bounded.as_of == dt.date(2013, 9, 30) and bounded.skipped == 6
    assert "the newest 3; 6 earlier month(s) not replayed" in bounded.describe()
    assert run.replay_plan(flights_spec, first, last, limit=20) == whole
    # By default a long history (16 years of days) replays its newest year, not 190 months.
    long = run.replay_plan(flights_spec, first, dt.date(2028, 12, 31), flights_spec.replay.months)
    assert len(long.months) == 12 and long.months[0][0] == dt.date(2028, 1, 1)
    assert long.skipped == 189 - 12  # Apr 2013 .. Dec 2028


def test_stage_lines_and_a_live_status_only_on_a_terminal() -> None:
    log = io.StringIO()
    console = Console(stream=log, live=False)
    console.status("  > data layers: raw (step 1/16, 3s)")
    console.stage("data layers", "2013-01-01..2013-12-31", "ok", 81.234)
    assert log.getvalue() == "  data layers        2013-01-01..2013-12-31     81.2s  ok\n"

    tty = io.StringIO()
    console = Console(stream=tty, live=True)
    console.status("  > replay 2013-04 (0/275 days done): monitoring")
    console.stage("replay 2013-04", "30 days", "checks ok; no retrain", 12.0)
    console.done()
    shown = tty.getvalue()
    assert shown.startswith("  > replay 2013-04")
    assert "\r\x1b[2K  replay 2013-04" in shown  # the status is erased before the stage line
    assert shown.endswith("\r\x1b[2K")  # and erased at the end


def test_checks_are_summarised_as_signals_not_errors() -> None:
    report = DatasetReport()
    key = ("flights/drift_report", "drift_share")
    report.checks[key] = [
        CheckOutcome("2013-04", True, "WARN", 0, ""),
        CheckOutcome("2013-10", False, "WARN", 1, ""),
        CheckOutcome("2013-12", False, "WARN", 8, ""),
    ]
    report.checks[("flights/validated", "null_rates")] = [
        CheckOutcome("data layers", False, "WARN", 1, "worst day 2013-02-09")
    ]
    report.checks[("flights/model_evaluation", "non_inferiority")] = [
        CheckOutcome("v1", True, "ERROR", None, ""),
        CheckOutcome("v5", False, "ERROR", None, ""),
    ]
    lines = [" ".join(line.split()) for line in check_lines(report)]
    assert lines == [
        "flights/drift_report drift_share passed 1 of 3; warned in 2013-10 (1 d), 2013-12 (8 d)",
        "flights/validated null_rates warn worst day 2013-02-09",
        "flights/model_evaluation non_inferiority passed 1 of 2; failed in v5",
    ]


def test_a_sensors_info_lines_go_to_the_run_log_not_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Dagster prints an in-process sensor's `context.log.info` on a console logger of its own;
    the replay's ticks send it to the run log."""

    @dg.op
    def noop() -> None:
        return None

    @dg.job
    def nothing() -> None:
        noop()

    @dg.sensor(job=nothing)
    def chatty(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        context.log.info("looked at the instance: nothing to do")
        return dg.SkipReason("nothing")

    defs = dg.Definitions(jobs=[nothing], sensors=[chatty])
    with (
        dg.DagsterInstance.local_temp(str(tmp_path)) as instance,
        library_logs_to(tmp_path / "run.log", run.CHATTY) as log,
    ):
        run.evaluate_sensor(defs.resolve_sensor_def("chatty"), instance, defs, None)
    assert "looked at the instance" not in capsys.readouterr().err
    assert "looked at the instance: nothing to do" in log.read_text()


def test_library_notes_go_to_the_log_and_their_warnings_still_print(tmp_path: Path) -> None:
    console = io.StringIO()
    library = logging.getLogger("some_library")
    library.propagate, library.level = False, logging.INFO
    library.addHandler(logging.StreamHandler(console))
    with library_logs_to(tmp_path / "run.log", ["some_library"]) as log:
        library.info("Creating initial tables")
        library.warning("a real warning")
    library.info("after the run")
    assert console.getvalue() == "a real warning\nafter the run\n"
    written = log.read_text()
    assert "INFO Creating initial tables" in written and "WARNING a real warning" in written
    assert "after the run" not in written  # put back as it was
