"""The local SQLite stores trade fsync-per-commit for speed, and the setting can be put back."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml_assets import sqlite_durability

PROBE = """
import sqlalchemy, sys
from ml_assets import definitions  # installs the hook, as every code-location load does
engine = sqlalchemy.create_engine(f"sqlite:///{sys.argv[1]}", poolclass=sqlalchemy.pool.NullPool)
with engine.connect() as conn:
    print(conn.exec_driver_sql("PRAGMA synchronous").scalar())
"""


def probe(db: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(db)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_loading_the_code_location_turns_sqlite_fsync_off(tmp_path: Path) -> None:
    # SQLite reports synchronous as 0 (OFF), 1 (NORMAL), 2 (FULL, its default).
    assert probe(tmp_path / "a.db") == "0"


def test_the_level_is_configurable(tmp_path: Path) -> None:
    assert probe(tmp_path / "b.db", ML_ASSETS_SQLITE_SYNCHRONOUS="full") == "2"


def test_an_unknown_level_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_ASSETS_SQLITE_SYNCHRONOUS", "sometimes")
    with pytest.raises(ValueError, match="ML_ASSETS_SQLITE_SYNCHRONOUS='SOMETIMES'"):
        sqlite_durability.sqlite_synchronous()
