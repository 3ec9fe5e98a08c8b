"""One prepared project (warehouse, MLflow store, Dagster instance) that fault cases copy.

Flights Jan 1 - Feb 28 2013 through features, built with the layers' own functions; then, as
real Dagster runs, a first training (as of Feb 20: champion v1, one audit row) and the scoring
of Feb 21-28 by it. A case copies the whole project home (warehouse, MLflow sqlite and
artifacts, DAGSTER_HOME with the io-manager outputs) and runs its job on the copy.

Table states are compared as (rows, two order-free hashes of the rows): `exact` over every
column, `content` without the columns that name the writing run or its clock, which differ
between two runs that compute the same rows.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from ml_assets import settings
from ml_assets.core.predictor import current_champion
from ml_assets.core.spec import DatasetSpec, load_spec, read_spec_mapping, write_spec
from ml_assets.core.tags import TRIGGER_TAG
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.conftest import FLIGHTS_SPEC, REPO, build_flights_warehouse
from ml_assets_tests.faults.driver import Job, Outcome, run_job

FIRST, LAST = dt.date(2013, 1, 1), dt.date(2013, 2, 28)
FIRST_AS_OF, RETRAIN_AS_OF = dt.date(2013, 2, 20), dt.date(2013, 2, 27)
SCORED = ("2013-02-21", "2013-02-28")
MODEL = "flights_arrival_delay"
# Small, fast training: the same code paths as the repo's spec, a smaller window and search.
# A lenient non-inferiority tolerance, so a retrain is promoted (the promotion points need one).
TRAINING = {
    "window_days": 30,
    "split": {"validation_days": 7, "test_days": 7},
    "search": {"method": "random", "budget": 1},
    "models": ["linear"],
}
EVALUATION = {"floor": 0.6, "non_inferiority_tolerance": 0.5}
VOLATILE = re.compile(r"(run_id|_at)$")


def write_flights_spec(home: Path) -> DatasetSpec:
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw["features"]["sql"] = [str(FLIGHTS_SPEC.parent / p) for p in raw["features"].get("sql", [])]
    raw["training"].update(TRAINING)
    raw["evaluation"].update(EVALUATION)
    path = home / "specs" / "flights.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_spec(path, raw)
    return load_spec(path)


def train_job(as_of: dt.date, trigger: str) -> Job:
    return Job(
        "flights__train",
        ops_config={"flights__training_set": {"config": {"as_of": as_of.isoformat()}}},
        tags={TRIGGER_TAG: trigger},
    )


def score_job(start: str = SCORED[0], end: str = SCORED[1]) -> Job:
    return Job("flights__monitor", start, end, selection=("flights/predictions",))


def data_job(start: str, end: str) -> Job:
    return Job("flights__daily_layers", start, end)


def expect_success(outcome: Outcome) -> Outcome:
    assert outcome.exitcode == 0 and outcome.success, (
        outcome.exitcode,
        outcome.errors,
        outcome.log[-3000:],
    )
    return outcome


def build_prepared(home: Path) -> Path:
    (home / "data").mkdir(parents=True)
    dagster_home = home / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    write_flights_spec(home)
    build_flights_warehouse(home, FIRST, LAST, features=True)
    expect_success(run_job(home, dagster_home, train_job(FIRST_AS_OF, "initial")))
    expect_success(run_job(home, dagster_home, score_job()))
    return dagster_home


def copy_project(prepared: Path, home: Path) -> Path:
    """The prepared project under `home` (the test's ML_ASSETS_HOME); returns its DAGSTER_HOME."""
    for name in ("data", "specs", "dagster_home"):
        shutil.copytree(prepared / name, home / name, dirs_exist_ok=True)
    return home / "dagster_home"


def warehouse(home: Path) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ML_ASSETS_HOME", str(home))
        return settings.warehouse_path()


def tracking(home: Path) -> MlflowTracking:
    return MlflowTracking(tracking_uri=f"sqlite:///{home / 'data' / 'mlflow' / 'mlflow.db'}")


def table_states(db: Path, *, content: bool = False) -> dict[str, tuple[int, int, int]]:
    """Every user table's (rows, xor of row hashes, sum of row hashes mod a prime)."""
    with duckdb.connect(str(db), read_only=True) as conn:
        tables = conn.execute(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_type = 'BASE TABLE' ORDER BY ALL"""
        ).fetchall()
        states = {}
        for schema, table in tables:
            columns = [
                c
                for (c,) in conn.execute(
                    """SELECT column_name FROM information_schema.columns
                       WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position""",
                    [schema, table],
                ).fetchall()
                if not (content and VOLATILE.search(c))
            ]
            cols = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
            n, xor, total = conn.execute(
                f"""SELECT count(*), coalesce(bit_xor(h), 0), coalesce(sum(h % 1000000007), 0)
                    FROM (SELECT hash(row({cols})) AS h FROM "{schema}"."{table}")"""
            ).fetchone()
            states[f"{schema}.{table}"] = (int(n), int(xor), int(total))
    return states


def audit(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(
            """SELECT decision, candidate_version, previous_champion_version,
                      new_champion_version, dagster_run_id
               FROM governance.model_decisions ORDER BY decision_id"""
        ).fetchall()


def decision_numbers(db: Path) -> tuple[int, int]:
    """(the last number the decision counter handed out, the newest decision_id)."""
    with duckdb.connect(str(db), read_only=True) as conn:
        ((counter,),) = conn.execute("SELECT max(last_id) FROM governance.decision_ids").fetchall()
        ((newest,),) = conn.execute(
            "SELECT max(decision_id) FROM governance.model_decisions"
        ).fetchall()
    return counter, newest


def runs_per_day(db: Path, table: str) -> dict[object, int]:
    column = "dagster_run_id" if table == "flights.predictions" else "_run_id"
    with duckdb.connect(str(db), read_only=True) as conn:
        return dict(
            conn.execute(
                f"SELECT _partition_date, count(DISTINCT {column}) FROM {table} GROUP BY ALL"
            ).fetchall()
        )


def assert_registry_agrees_with_audit(home: Path) -> list[tuple]:
    """The alias is the audited champion; each row continues the one before; every version the
    registry shows as promoted has its `promoted` row."""
    rows = audit(warehouse(home))
    store = tracking(home)
    assert current_champion(store, MODEL) == rows[-1][3], rows
    champion = None
    for row in rows:
        assert row[2] == champion, rows  # previous_champion_version
        champion = row[3]
    versions = store.client().search_model_versions(f"name = '{MODEL}'")
    promoted = {str(v.version) for v in versions if "promoted_at" in v.tags}
    assert promoted == {r[1] for r in rows if r[0] == "promoted"}, (promoted, rows)
    return rows
