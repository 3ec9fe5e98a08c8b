"""Outside stores failing under a real run: the MLflow store unreachable or read-only, the disk
refusing the warehouse's writes. Each run fails with an error that names what failed, the
warehouse is as it was, and a rerun with the store back converges.

Read-only without chmod (tests may run as root, whom file modes do not stop): the MLflow sqlite
store is opened through a `mode=ro` sqlite URI. Unreachable: a tracking server URI on a port
nobody listens on, with MLflow's HTTP retries off (its default backs off for minutes). A full
disk: the run's RLIMIT_FSIZE (see `driver.Job.file_size_limit`), so the kernel refuses the
warehouse's writes past 2 MB as a full disk refuses them; no mount, no root needed.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

from ml_assets.core.predictor import current_champion
from ml_assets_tests.faults.conftest import Retrain, champion_metrics
from ml_assets_tests.faults.driver import run_job
from ml_assets_tests.faults.prepared import (
    MODEL,
    RETRAIN_AS_OF,
    assert_registry_agrees_with_audit,
    audit,
    data_job,
    expect_success,
    runs_per_day,
    score_job,
    table_states,
    tracking,
    train_job,
    warehouse,
)

NO_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable() -> tuple[str, str]:
    port = closed_port()
    return f"http://127.0.0.1:{port}", f"127.0.0.1:{port}"


def read_only(home: Path) -> tuple[str, str]:
    db = home / "data" / "mlflow" / "mlflow.db"
    return f"sqlite:///file:{db}?mode=ro&uri=true", "attempt to write a readonly database"


def registry_state(home: Path) -> tuple[int, str | None]:
    store = tracking(home)
    return len(store.client().search_model_versions(f"name = '{MODEL}'")), current_champion(
        store, MODEL
    )


def test_training_with_mlflow_unreachable_or_read_only_fails_naming_it_then_converges(
    home: Path, project: Path, retrain: Retrain
) -> None:
    db = warehouse(home)
    before, registry, decisions = table_states(db), registry_state(home), audit(db)
    retrain_job = train_job(RETRAIN_AS_OF, "retrain")
    for uri, says in (unreachable(), read_only(home)):
        job = dataclasses.replace(retrain_job, tracking_uri=uri)
        failed = run_job(home, project, job, env=NO_RETRIES)
        assert failed.exitcode == 0 and failed.success is False, failed.log[-3000:]
        (error,) = [e for e in failed.errors if e.startswith("flights__model_candidate")]
        assert "MlflowException" in error and says in error, error[:2000]
        assert [e.split(":")[0] for e in failed.errors] == ["flights__model_candidate"]
        after = table_states(db)
        # Only the training set (the step before) was rewritten, with the rows a retrain writes.
        assert {t for t in before if after[t] != before[t]} <= {"flights.training_set"}
        content = table_states(db, content=True)["flights.training_set"]
        assert content == retrain.content["flights.training_set"]
        assert registry_state(home) == registry
        assert audit(db) == decisions

    rerun = expect_success(run_job(home, project, retrain_job))
    final, reference = table_states(db, content=True), dict(retrain.content)
    final.pop("governance.model_decisions"), reference.pop("governance.model_decisions")
    assert final == reference
    assert champion_metrics(home)[1] == retrain.champion_metrics
    rows = assert_registry_agrees_with_audit(home)
    assert len(rows) == len(retrain.audit) and rows[-1][4] == rerun.run_id


def test_scoring_with_mlflow_unreachable_fails_naming_it_then_converges(
    home: Path, project: Path
) -> None:
    db = warehouse(home)
    before, content = table_states(db), table_states(db, content=True)
    uri, says = unreachable()
    failed = run_job(
        home, project, dataclasses.replace(score_job(), tracking_uri=uri), env=NO_RETRIES
    )
    assert failed.exitcode == 0 and failed.success is False, failed.log[-3000:]
    (error,) = [e for e in failed.errors if e.startswith("flights__predictions")]
    assert "MlflowException" in error and says in error, error[:2000]
    assert table_states(db) == before

    expect_success(run_job(home, project, score_job()))
    assert table_states(db, content=True) == content
    assert set(runs_per_day(db, "flights.predictions").values()) == {1}


def test_a_full_disk_while_writing_a_partition_fails_naming_the_file_and_keeps_it(
    home: Path, project: Path
) -> None:
    """February's raw rows (25k rows, MBs of WAL) and the lookups against a 2 MB file-size limit."""
    db = warehouse(home)
    before, content = table_states(db), table_states(db, content=True)
    job = dataclasses.replace(data_job("2013-02-01", "2013-02-28"), file_size_limit=2_000_000)
    failed = run_job(home, project, job)
    assert failed.exitcode == 0 and failed.success is False, failed.log[-3000:]
    # Both steps that write in the run fail at their commit, naming the file they could not write.
    assert {e.split(":")[0] for e in failed.errors} == {"flights__raw", "flights__reference_tables"}
    for error in failed.errors:
        assert "Failed to commit" in error and f"{db}.wal" in error, error[-2000:]
        assert "File too large" in error, error[-2000:]
    assert table_states(db) == before

    expect_success(run_job(home, project, data_job("2013-02-01", "2013-02-28")))
    assert table_states(db, content=True) == content
    assert set(runs_per_day(db, "flights.raw").values()) == {1}
