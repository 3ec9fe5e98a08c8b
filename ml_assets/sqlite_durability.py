"""How hard the local SQLite stores (Dagster's instance, MLflow's tracking store) flush to disk.

The embedded Dagster instance writes every event in its own SQLite transaction, and SQLite's
default (`synchronous=FULL`) waits for the disk on each commit. A range run logs a check result
per day and check, so that wait dominated: a 100-day range with one per-day check took 22.2 s
with the default and 6.9 s with `synchronous=OFF` (measured on this project's machine). With OFF
a killed process loses nothing (SQLite has handed the write to the OS); only an OS crash or power
cut can lose the newest transactions or, rarely, corrupt a file, which is an acceptable price for
a laptop's dev instance and never the warehouse (DuckDB is not affected). Teams that need more
move the instance to PostgreSQL, or set `ML_ASSETS_SQLITE_SYNCHRONOUS=FULL`.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy
from sqlalchemy import event

LEVELS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_installed = False


def sqlite_synchronous() -> str:
    """`ML_ASSETS_SQLITE_SYNCHRONOUS` (OFF by default): SQLite's `synchronous` pragma."""
    level = os.environ.get("ML_ASSETS_SQLITE_SYNCHRONOUS", "OFF").upper()
    if level not in LEVELS:
        raise ValueError(
            f"ML_ASSETS_SQLITE_SYNCHRONOUS={level!r}: expected one of {sorted(LEVELS)}"
        )
    return level


def install() -> None:
    """Apply the level to every SQLite connection SQLAlchemy opens in this process, from now on.

    Dagster's SQLite storages open a connection per write (no pool), so a connect hook reaches
    all of them; it is installed once per process (run workers load the code location first).
    """
    global _installed
    if _installed:
        return
    level = sqlite_synchronous()

    @event.listens_for(sqlalchemy.engine.Engine, "connect")
    def _set_synchronous(dbapi_connection: Any, _record: Any) -> None:
        if type(dbapi_connection).__module__.split(".")[0] != "sqlite3":
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA synchronous={level}")
        finally:
            cursor.close()

    _installed = True
