"""How hard the local SQLite stores (Dagster's instance, MLflow's tracking store) flush to disk.

The embedded Dagster instance writes every event in its own SQLite transaction, and SQLite's
default (`synchronous=FULL`) waits for the disk on each commit. A range run logs a check result
per day and check, so that wait dominated: a 100-day range with one per-day check took 22.2 s
with the default and 6.9 s with `synchronous=OFF` (measured on this project's machine). With OFF
a killed process loses nothing (SQLite has handed the write to the OS); only an OS crash or power
cut can lose the newest transactions or, rarely, corrupt a file, which is an acceptable price for
a laptop's dev instance and never the warehouse (DuckDB is not affected). Teams that need more
move the instance to PostgreSQL, or set `ML_ASSETS_SQLITE_SYNCHRONOUS=FULL`.

The same per-event cost has a second part, in Python: Dagster 1.13.27's SQLite event log builds a
new SQLAlchemy engine for every connection it opens (`SqliteEventLogStorage._connect`, several
per event), and an engine's compiled-statement cache dies with it, so every INSERT and UPDATE is
compiled again, each time. `install` keeps one engine per shard file instead (still `NullPool`:
each use opens and closes its own SQLite connection, exactly as before, so other processes see
the same locking). Measured on the 2-core box, data layers over 60 days (1,221 events): 37-40 s
of CPU before, 27-29 s after; a year's backfill logs 7,016 events. Dagster's SQLite storage
stores even a batch one event at a time (the base class's `store_event_batch`), and never batches
check evaluations: `ml_assets.event_log_batches` gives it real batches (one transaction per
shard), which is where most of a range run's event cost went.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

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

    cache_event_log_engines()
    _installed = True


def cache_event_log_engines() -> None:
    """Give Dagster's SQLite event log one engine per shard file for the life of the storage,
    instead of one per connection (see the module docstring). Idempotent."""
    storage = sqlite_event_log.SqliteEventLogStorage
    if getattr(storage._connect, "_ml_assets_cached", False):
        return
    missing = [a for a in ("conn_string_for_shard", "_initdb") if not hasattr(storage, a)]
    if missing:  # a Dagster whose storage changed shape: keep its own behaviour
        return

    @contextmanager
    def _connect(self: Any, shard: str) -> Iterator[Connection]:
        with self._db_lock, shard_engine(self, shard).connect() as conn, conn.begin():
            yield conn

    _connect._ml_assets_cached = True  # type: ignore[attr-defined]
    storage._connect = _connect  # type: ignore[method-assign]


def shard_engine(storage: Any, shard: str) -> Engine:
    """The storage's one engine for a shard file, its database created on first use. Call it
    holding the storage's `_db_lock`, as Dagster's own `_connect` does."""
    engines: dict[str, Engine] = storage.__dict__.setdefault("_ml_assets_engines", {})
    engine = engines.get(shard)
    if engine is None:
        engine = engines[shard] = sqlalchemy.create_engine(
            storage.conn_string_for_shard(shard),
            poolclass=NullPool,
            connect_args={"timeout": sqlite_event_log.SQLITE_BUSY_TIMEOUT_SECONDS},
        )
    if shard not in storage._initialized_dbs:
        storage._initdb(engine)
        storage._initialized_dbs.add(shard)
    return engine
