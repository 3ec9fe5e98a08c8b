"""Opening the warehouse while another process holds DuckDB's file lock: a bounded wait, then an
error that names the holder. The holder is a real second process with the file open."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_assets.resources.warehouse import Warehouse, WarehouseLockTimeout

HOLD = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "warehouse.duckdb"


@pytest.fixture
def holder(db: Path) -> Iterator[callable]:
    procs: list[subprocess.Popen] = []

    def hold(seconds: float) -> subprocess.Popen:
        db.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "locked"
        procs.append(proc)
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_held_lock_fails_after_the_timeout_naming_the_holder(db: Path, holder) -> None:
    proc = holder(60)
    t0 = time.monotonic()
    with (
        pytest.raises(WarehouseLockTimeout) as err,
        Warehouse(database=str(db), lock_timeout_seconds=1.5).get_connection(),
    ):
        pass
    waited = time.monotonic() - t0
    assert 1.0 <= waited < 6, waited
    message = str(err.value)
    assert f"held by PID {proc.pid} (" in message and "duckdb.connect" in message
    assert str(db) in message and "Conflicting lock is held" in message


def test_a_lock_released_during_the_wait_is_taken(db: Path, holder) -> None:
    holder(1.0)
    t0 = time.monotonic()
    with Warehouse(database=str(db), lock_timeout_seconds=30).get_connection() as conn:
        assert conn.execute("SELECT 42").fetchone() == (42,)
    assert time.monotonic() - t0 < 15


def test_other_open_errors_are_not_retried(tmp_path: Path) -> None:
    """A path that cannot be a database fails at once (dagster-duckdb retried it ~100 s)."""
    folder = tmp_path / "a_folder"
    folder.mkdir()
    t0 = time.monotonic()
    with (
        pytest.raises(Exception, match="a_folder") as err,
        Warehouse(database=str(folder), lock_timeout_seconds=60).get_connection(),
    ):
        pass
    assert not isinstance(err.value, WarehouseLockTimeout)
    assert time.monotonic() - t0 < 5
