"""`ml-assets init` on two generated files: the spec it writes, and that the graph runs on it.

Two CSVs are generated at test time (nothing downloaded), 60 days x 50 rows each with a
learnable signal: a binary churn table (text label, NULLs, UTC timestamps with `Z`, a mostly
NULL column, a second time column) and a regression sales table (one row per store per `date`,
no id column). The real console script runs each as a subprocess; the fast tests check the
written spec, the slow one runs the data layers and the model layers on it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ml_assets import cli, run, settings
from ml_assets.core.spec import load_spec, read_spec_mapping
from ml_assets.definitions import build_defs
from ml_assets.init.infer import InitError
from ml_assets.init.propose import Options, propose

CLI = Path(sys.executable).parent / "ml-assets"
DAYS, PER_DAY = 60, 50
CHURN_START, SALES_START = dt.date(2024, 3, 1), dt.date(2024, 1, 1)


def write_churn_csv(path: Path, seed: int = 7) -> Path:
    """Binary label `status` (churned/active, 3% missing) driven by visits, plan, channel and
    amount."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(DAYS):
        day = CHURN_START + dt.timedelta(days=d)
        for i in range(PER_DAY):
            event_id = d * PER_DAY + i + 1
            at = dt.datetime.combine(day, dt.time()) + dt.timedelta(
                seconds=int(rng.integers(0, 86_400))
            )
            channel = ("web", "app", "store")[event_id % 3]
            plan = ("basic", "pro")[int(rng.random() < 0.5)]
            visits = int(rng.poisson(3))
            amount = float(np.round(rng.lognormal(3, 0.6), 2))
            logit = -0.4 + 1.4 * (visits < 2) - 0.9 * (plan == "pro") + 0.6 * (channel == "web")
            logit += -0.01 * (amount - 20)
            status = "churned" if rng.random() < 1 / (1 + np.exp(-logit)) else "active"
            rows.append(
                {
                    "event_id": event_id,
                    "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "signup_date": (day - dt.timedelta(days=int(rng.integers(0, 400)))).isoformat(),
                    "channel": channel,
                    "plan": plan,
                    "visits": visits,
                    "amount": "" if rng.random() < 0.1 else amount,
                    "notes": "" if rng.random() < 0.7 else ("called", "emailed")[i % 2],
                    "status": "" if rng.random() < 0.03 else status,
                }
            )
    return _write(path, rows)


def write_sales_csv(path: Path, seed: int = 11) -> Path:
    """Regression label `sales`, one row per store per `date` (a DATE, no id column)."""
    rng = np.random.default_rng(seed)
    region_of = {f"s{s:02d}": ("north", "south", "east")[s % 3] for s in range(1, PER_DAY + 1)}
    effect = {"north": 10.0, "south": -5.0, "east": 0.0}
    rows = []
    for d in range(DAYS):
        day = SALES_START + dt.timedelta(days=d)
        for store, region in region_of.items():
            promo = bool(rng.random() < 0.3)
            price = float(np.round(rng.uniform(5, 15), 2))
            sales = 200 + 40 * promo - 8 * price + effect[region] + 15 * (day.weekday() >= 5)
            sales += rng.normal(0, 12)
            rows.append(
                {
                    "date": day.isoformat(),
                    "store": store,
                    "region": region,
                    "promo": str(promo).lower(),
                    "price": price,
                    "temperature": "" if rng.random() < 0.05 else round(rng.normal(5, 6), 1),
                    "sales": round(float(sales), 2),
                }
            )
    return _write(path, rows)


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def init_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed console script, with the test's project home (relative source paths)."""
    env = {**os.environ, "ML_ASSETS_HOME": str(home)}
    return subprocess.run(
        [str(CLI), "init", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture
def churn(home: Path) -> Path:
    return write_churn_csv(home / "data" / "input" / "churn.csv")


@pytest.fixture
def sales(home: Path) -> Path:
    return write_sales_csv(home / "data" / "input" / "sales.csv")


def test_init_writes_a_binary_dataset_that_loads(home: Path, churn: Path) -> None:
    out = home / "specs"
    done = init_cli(home, str(churn), "--name", "churn", "--label", "status", "--out", str(out))
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    # Two text values, neither a yes/true word: the rarer one is the positive class, to review.
    assert "label: \"status\" = 'churned' (binary, 40.6% positive of 2,920 labelled" in printed
    assert "positive class guessed as the rarer value 'churned'" in printed
    assert "event time: created_at (TIMESTAMPTZ, offsets Z, converted to UTC)" in printed
    assert "not a feature: notes: 7" in printed  # about 70% NULL

    spec = load_spec(out / "churn" / "defs.yaml")
    raw = read_spec_mapping(out / "churn" / "defs.yaml")
    assert raw["source"]["files"] == ["data/input/churn.csv"]  # relative to the project root
    assert spec.label.kind == "binary" and spec.label.expression == "\"status\" = 'churned'"
    assert spec.event_time.column == "created_at" and spec.event_time.timezone == "UTC"
    assert spec.contract.unique_key == ["event_id"]
    cols = spec.contract.columns
    assert {c: cols[c].type for c in cols} == {
        "event_id": "BIGINT",
        "created_at": "TIMESTAMPTZ",
        "signup_date": "DATE",
        "channel": "VARCHAR",
        "plan": "VARCHAR",
        "visits": "BIGINT",
        "amount": "DOUBLE",
        "notes": "VARCHAR",
        "status": "VARCHAR",
    }
    assert not cols["event_id"].nullable and cols["amount"].nullable
    assert cols["amount"].min == 0 and cols["amount"].max is None
    assert cols["channel"].allowed == ["app", "store", "web"]
    assert cols["status"].allowed == ["active", "churned"]
    assert (spec.partitions.start, spec.partitions.end) == (
        CHURN_START,
        CHURN_START + dt.timedelta(days=DAYS - 1),
    )
    assert spec.slices == ["channel", "plan"]
    features = spec.features.columns
    assert {c: f.kind for c, f in features.items()} == {
        "channel": "categorical",
        "plan": "categorical",
        "visits": "numeric",
        "amount": "numeric",
        "event_hour": "numeric",
        "event_weekday": "categorical",
        "event_month": "numeric",
    }
    # Every feature is a declaration (no SQL file); with no label delay given, no label window.
    assert spec.features.sql == [] and all(f.declared for f in features.values())
    assert features["visits"].column == "visits" and features["event_hour"].calendar == "hour"
    assert spec.features.lookback_days == 0
    assert spec.evaluation.metric == "roc_auc" and spec.evaluation.floor == 0.55
    assert spec.training.window_days == 42 and spec.training.split.test_days == 14
    assert spec.monitoring.expected_drift == ["event_weekday", "event_month"]
    # The definitions build (assets, checks, jobs) from what was written.
    build_defs([spec])


def test_init_writes_a_regression_dataset_with_a_pair_key(home: Path, sales: Path) -> None:
    out = home / "specs"
    done = init_cli(home, str(sales), "--name", "sales", "--label", "sales", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "label: sales (regression: " in done.stdout
    spec = load_spec(out / "sales" / "defs.yaml")
    assert spec.label.kind == "regression" and spec.label.column == "sales"
    assert spec.event_time.column == "date"
    assert spec.contract.columns["date"].type == "DATE"
    assert spec.contract.columns["promo"].type == "BOOLEAN"
    assert spec.contract.unique_key == ["date", "store"]
    # store has 50 values; promo is true on 30% of rows: ~210 rows in a 14-day test window.
    assert spec.slices == ["region", "promo"]
    assert "event_hour" not in spec.features.columns  # dates have no time of day
    # The key's entity column is a feature (each store has its own level); its date is not.
    assert (
        spec.features.columns["store"].kind == "categorical" and "date" not in spec.features.columns
    )
    assert "store (part of the key date, store" in done.stdout
    assert spec.evaluation.metric == "r2" and spec.evaluation.floor == 0.1


def test_init_refuses_to_overwrite_and_fails_loudly(
    home: Path, churn: Path, capsys: pytest.CaptureFixture
) -> None:
    """In process (the same `main` the console script calls), to keep the fast tier fast."""
    out = home / "specs"
    target = out / "churn"
    target.mkdir(parents=True)
    (target / "mine.txt").write_text("keep me")
    args = ["init", str(churn), "--name", "churn", "--label", "status", "--out", str(out)]

    def errors(extra: list[str]) -> tuple[int, str]:
        code = cli.main(args + extra)
        return code, capsys.readouterr().err

    code, err = errors([])
    assert code == 1 and "already exists: pass --force" in err
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    # A spec that does not load is never installed, even with --force.
    code, err = errors(["--force", "--label-delay-days", "-1"])
    assert code == 1 and "field 'label.delay_days'" in err, err
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"]
    code, err = errors(["--force", "--label", "nope"])
    assert code == 1 and "--label nope: no such column" in err

    assert cli.main([*args, "--force"]) == 0
    assert sorted(p.name for p in target.iterdir()) == ["defs.yaml", "mine.txt"]
    assert (target / "mine.txt").read_text() == "keep me"
    # Another folder declaring the same dataset name is refused too.
    (out / "copy").mkdir()
    (out / "copy" / "defs.yaml").write_text((target / "defs.yaml").read_text())
    code, err = errors(["--force"])
    assert code == 1 and "is already used by" in err, err


def _tiny(path: Path, labels: list[str], times: list[str] | None = None) -> Path:
    """A small file: id, event time, a feature and the given label values, cycled over 40 rows."""
    times = times or [f"2024-05-{1 + i % 20:02d}T10:00:00Z" for i in range(40)]
    rows = [
        {"id": i, "at": times[i % len(times)], "x": i % 7, "y": labels[i % len(labels)]}
        for i in range(40)
    ]
    return _write(path, rows)


@pytest.mark.parametrize(
    ("labels", "positive", "kind", "label"),
    [
        (["0", "1", "1"], None, "binary", {"column": "y"}),
        # DuckDB reads yes/no as BOOLEAN, and the contract's TRY_CAST agrees on every value.
        (["yes", "no", "no"], None, "binary", {"column": "y"}),
        (["lost", "kept", "kept"], None, "binary", {"expression": "\"y\" = 'lost'"}),
        (["lost", "kept", "kept"], "kept", "binary", {"expression": "\"y\" = 'kept'"}),
        (["3.5", "20", "16", "1"], ">15", "binary", {"expression": '"y" > 15'}),
        (["3.5", "20", "16", "1"], None, "regression", {"column": "y"}),
    ],
)
def test_label_kind_and_expression(
    home: Path, labels: list[str], positive: str | None, kind: str, label: dict
) -> None:
    path = _tiny(home / "data" / "tiny.csv", labels)
    proposal = propose(Options(path, "tiny", "y", positive=positive))
    assert proposal.spec["label"] == {"kind": kind, **label, "delay_days": 0}


@pytest.mark.parametrize(
    ("labels", "positive", "error"),
    [
        (["a", "b", "c"], None, "multi-class labels are not supported"),
        (["a", "b"], "z", "never occurs in y"),
        (["a", "a"], None, "nothing to learn"),
        (["a", "b"], ">3", "a comparison needs a numeric label"),
    ],
)
def test_label_refusals(home: Path, labels: list[str], positive: str | None, error: str) -> None:
    path = _tiny(home / "data" / "tiny.csv", labels)
    with pytest.raises(InitError, match=error):
        propose(Options(path, "tiny", "y", positive=positive))


@pytest.mark.parametrize(
    ("times", "type_", "review"),
    [
        (["2024-05-01T10:00:00+02:00", "2024-05-02T23:30:00-05:00"], "TIMESTAMPTZ", None),
        (["2024-05-01 10:00:00", "2024-05-02 23:30:00"], "TIMESTAMP", "has no time zone"),
        (["2024-05-01", "2024-05-02"], "DATE", None),
    ],
)
def test_event_time_zone(home: Path, times: list[str], type_: str, review: str | None) -> None:
    path = _tiny(home / "data" / "tiny.csv", ["0", "1"], times)
    proposal = propose(Options(path, "tiny", "y"))
    assert proposal.spec["event_time"] == {"column": "at", "timezone": "UTC"}
    assert proposal.spec["contract"]["columns"]["at"]["type"] == type_
    reviewed = " ".join(proposal.notes.review)
    assert (review in reviewed) if review else "has no time zone" not in reviewed
    # 23:30 at -05:00 is 04:30 UTC the next day: partitions are UTC days.
    last = dt.date(2024, 5, 3) if type_ == "TIMESTAMPTZ" else dt.date(2024, 5, 2)
    assert proposal.spec["partitions"]["end"] == last


def test_an_event_time_with_gaps_is_used_and_its_rejects_announced(home: Path) -> None:
    """Rows without an event time are rejected with a reason at raw, not a reason to refuse the
    file: the column is chosen (and accepted with --time), and the user is told how many."""
    times = ["2024-05-01T10:00:00Z", "", "2024-05-02T10:00:00Z", "2024-05-03T10:00:00Z"]
    path = _tiny(home / "data" / "tiny.csv", ["0", "1"], times)
    for requested in (None, "at"):
        proposal = propose(Options(path, "tiny", "y", time=requested))
        assert proposal.spec["event_time"] == {"column": "at", "timezone": "UTC"}
        reviewed = " ".join(proposal.notes.review)
        assert "10 of 40 rows have no value" in reviewed and "no_event_time" in reviewed


def test_a_few_rows_a_day_get_a_trailing_window_long_enough_to_judge(home: Path) -> None:
    """4 rows a day: a 7-day window holds 28, under the 50 a verdict needs; init widens it."""
    rows = [
        {
            "day": (dt.date(2024, 1, 1) + dt.timedelta(days=d)).isoformat(),
            "site": site,
            "x": (d * 7 + i) % 11,
            "y": float(d % 13 + i),
        }
        for d in range(200)
        for i, site in enumerate(("a", "b", "c", "d"))
    ]
    proposal = propose(Options(_write(home / "data" / "sites.csv", rows), "sites", "y"))
    monitoring = proposal.spec["monitoring"]
    days, min_rows = monitoring["performance_window_days"], monitoring["performance_min_rows"]
    assert days == 16 and min_rows == 51  # ceil(50 / (0.8 * 4)); 80% of 64 expected rows
    assert 4 * days >= min_rows >= 50


def test_parquet_keeps_its_types(home: Path, churn: Path) -> None:
    parquet = home / "data" / "input" / "churn.parquet"
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"COPY (SELECT * FROM read_csv('{churn}')) TO '{parquet}' (FORMAT parquet)")
    proposal = propose(Options(parquet, "churn", "status"))
    columns = proposal.spec["contract"]["columns"]
    assert proposal.spec["source"] == {"files": ["data/input/churn.parquet"], "format": "parquet"}
    assert {c: columns[c]["type"] for c in ("event_id", "created_at", "signup_date", "amount")} == {
        "event_id": "BIGINT",
        "created_at": "TIMESTAMPTZ",
        "signup_date": "DATE",
        "amount": "DOUBLE",
    }


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["churn", "sales"])
def test_init_dataset_runs_end_to_end(
    home: Path, request: pytest.FixtureRequest, instance, dataset: str
) -> None:
    """Data layers over all 60 days, then `make run`'s replay: train on the first window
    (promoted), score and monitor the rest, with the retrain sensor deciding."""
    path = request.getfixturevalue(dataset)
    label = {"churn": "status", "sales": "sales"}[dataset]
    out = home / "specs"
    # Churn's labels are known a day later: init then declares label means per slice entity.
    delay = ["--label-delay-days", "1"] if dataset == "churn" else []
    done = init_cli(home, str(path), "--name", dataset, "--label", label, "--out", str(out), *delay)
    assert done.returncode == 0, done.stderr
    spec = load_spec(out / dataset / "defs.yaml")
    windows = [c for c, f in spec.features.columns.items() if f.window is not None]
    assert windows == (["channel_label_mean_28d", "plan_label_mean_28d"] if delay else [])
    defs = build_defs([spec])
    first, last = run.partition_range(spec)
    data = run.run_range(defs, spec.names.job("daily_layers"), instance, first, last)
    assert data.success
    failed = [
        (e.asset_key.to_user_string(), e.check_name)
        for e in data.get_asset_check_evaluations()
        if not e.passed and e.severity.value == "ERROR"
    ]
    assert failed == []

    ok, notes = run.replay(defs, spec, instance, first, last)
    assert ok, notes
    assert any(": promoted" in n for n in notes), notes
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        validated, quarantined = conn.execute(
            f"SELECT (SELECT count(*) FROM {dataset}.validated), "
            f"(SELECT count(*) FROM {dataset}.quarantine)"
        ).fetchone()
        scored = conn.execute(f"SELECT count(*) FROM {dataset}.predictions").fetchone()[0]
        decision, gates = conn.execute(
            "SELECT decision, checks FROM governance.model_decisions WHERE dataset = ? "
            "ORDER BY decision_id LIMIT 1",
            [dataset],
        ).fetchone()
    assert (validated, quarantined) == (DAYS * PER_DAY, 0)
    window = spec.training.window_days
    assert scored == (DAYS - window) * PER_DAY  # every day after the first training window
    # The first candidate passed every blocking gate the init chose, the floor included.
    gates = {g["name"]: g for g in json.loads(gates)}
    assert decision == "promoted", gates
    assert all(g["passed"] for g in gates.values() if g["blocking"]), gates
    assert gates["metric_floor"]["observed"] >= spec.evaluation.floor


def test_default_out_is_the_defs_folder(
    home: Path, sales: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Without --out the dataset goes to `settings.defs_dir()/<name>/` (here a temp stand-in:
    the real defs folder is shared), which `make run` and `dagster dev` load."""
    monkeypatch.setattr(settings, "defs_dir", lambda: home / "defs")
    assert cli.main(["init", str(sales), "--name", "sales", "--label", "sales"]) == 0
    assert load_spec(home / "defs" / "sales" / "defs.yaml").name == "sales"
    assert f"wrote {home / 'defs' / 'sales' / 'defs.yaml'}" in capsys.readouterr().out
