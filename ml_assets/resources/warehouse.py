"""The warehouse: one DuckDB file, through dagster-duckdb's resource, or a DuckLake.

The default is the embedded file. DuckDB allows a single writer process. Steps that open it share
the `duckdb_warehouse` pool (limit 1, see dagster.yaml), so runs of this project queue for the
slot rather than collide. A process outside the pool (a notebook, the DuckDB CLI, a `read_only`
reader) can still hold the file's lock: a step then retries for `lock_timeout_seconds` and fails
naming the holder's PID.

`ML_ASSETS_WAREHOUSE=ducklake` selects the multi-writer backend (`ducklake.py`): the same SQL
against a DuckLake whose catalog is a PostgreSQL database (`ML_ASSETS_DUCKLAKE_CATALOG`, a libpq
connection string) and whose data files live under `ML_ASSETS_DUCKLAKE_DATA_PATH`. Its writers
retry on transaction conflicts, and its steps are in no pool: partitions write in parallel.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ml_assets import settings
from ml_assets.resources.ducklake import RetryPolicy, ducklake_connection

WAREHOUSE_POOL = "duckdb_warehouse"
BACKEND_ENV = "ML_ASSETS_WAREHOUSE"
BACKENDS = ("duckdb", "ducklake")
CATALOG_ENV = "ML_ASSETS_DUCKLAKE_CATALOG"
DATA_PATH_ENV = "ML_ASSETS_DUCKLAKE_DATA_PATH"


def backend() -> str:
    """`ML_ASSETS_WAREHOUSE`: `duckdb` (the embedded file, default) or `ducklake`."""
    value = (os.environ.get(BACKEND_ENV) or "duckdb").strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={value!r}: expected one of {', '.join(BACKENDS)}")
    return value


def warehouse_pool() -> str | None:
    """The pool of steps that open the warehouse: `duckdb_warehouse` (limit 1) for the embedded
    file's single writer; none for DuckLake, whose writers run in parallel and retry conflicts.
    Read when the definitions are built, so set the backend for every process alike."""
    return WAREHOUSE_POOL if backend() == "duckdb" else None


# DuckDB 1.x/2.x: 'IO Error: Could not set lock on file "<path>": Conflicting lock is held in
# <program> (PID <n>) ...'. The lock is a non-blocking fcntl lock, so DuckDB itself never waits.
LOCK_CONFLICT = "Could not set lock on file"
HOLDER_PID = re.compile(r"\(PID (\d+)\)")


# DuckDB's own default is 80% of RAM, and it takes it: the 10x flights backfill's process peaked
# at 6.21 GiB with it (92-day feature chunks). With 1500MB and 31-day chunks it peaked at 1.95 GiB
# and its features step was no slower (140.9 s against 174.0 s, the two runs back to back on a
# loaded 2-core machine). At 1GB with year-long feature queries it had spilled for over 7 minutes.
# `none` gives DuckDB's default back.
MEMORY_LIMIT_ENV = "ML_ASSETS_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT: str | None = "1500MB"


def memory_limit() -> str | None:
    """DuckDB's `memory_limit` for warehouse sessions: the env var (`none` for DuckDB's own
    default), else DEFAULT_MEMORY_LIMIT."""
    value = (os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT or "none").strip()
    return None if value.lower() == "none" else value


class WarehouseLockTimeout(RuntimeError):
    """Another process kept the DuckDB file's write lock for longer than the step would wait."""


def lock_holder(message: str) -> str:
    """'PID n (its command line)' from DuckDB's lock-conflict message, as far as it is known."""
    found = HOLDER_PID.search(message)
    if not found:
        return "an unknown process"
    pid = found.group(1)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return f"PID {pid}"
    return f"PID {pid} ({cmdline[:200]})" if cmdline else f"PID {pid}"


def connect_waiting_for_lock(
    database: str,
    *,
    config: dict[str, Any],
    timeout_seconds: float,
) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying while another process holds its lock, for at most
    `timeout_seconds`. Any other error is raised at once (dagster-duckdb retried every
    RuntimeError, so a bad path or config took ~100 s to report)."""
    deadline = time.monotonic() + timeout_seconds
    started = time.monotonic()
    delay = 0.05
    while True:
        try:
            return duckdb.connect(database, read_only=False, config=config)
        except duckdb.IOException as exc:
            if LOCK_CONFLICT not in str(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLockTimeout(
                    f"gave up after {time.monotonic() - started:.1f}s waiting for the write lock "
                    f"on the DuckDB warehouse {database}: it is held by {lock_holder(str(exc))}. "
                    "DuckDB allows one process to open the file for writing; close that process "
                    "(a notebook, the DuckDB CLI, another pipeline outside the duckdb_warehouse "
                    f"pool) or raise the warehouse's lock_timeout_seconds. DuckDB said: {exc}"
                ) from exc
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)


class Warehouse(DuckDBResource):
    """DuckDBResource that creates the file's folder, pins the session time zone to UTC and waits
    a bounded time for another process's lock; or, with `backend: ducklake`, a session on a
    DuckLake whose writes retry on conflicts with other writers."""

    backend: str = Field(
        default_factory=backend,
        description=f"`duckdb` (the embedded file) or `ducklake`. Default from {BACKEND_ENV}.",
    )
    ducklake_catalog: str | None = Field(
        default_factory=lambda: os.environ.get(CATALOG_ENV),
        description=(
            "DuckLake backend: libpq connection string of the PostgreSQL catalog database, "
            f"e.g. 'host=db port=5432 dbname=lake user=ml'. Default from {CATALOG_ENV}; a "
            "password is best left to PGPASSWORD or ~/.pgpass."
        ),
    )
    ducklake_data_path: str | None = Field(
        default_factory=lambda: os.environ.get(DATA_PATH_ENV),
        description=(
            "DuckLake backend: folder (or object-store URL) of the Parquet data files. Default "
            f"from {DATA_PATH_ENV}, else data/warehouse/ducklake/."
        ),
    )
    conflict_attempts: int = Field(
        default=10,
        description=(
            "DuckLake backend: attempts of a write transaction that conflicts with other writers "
            "(replayed after a jittered exponential backoff) before the step fails."
        ),
    )
    conflict_backoff_seconds: float = Field(
        default=0.05,
        description="DuckLake backend: first backoff of a conflict retry; doubles, capped at 2 s.",
    )

    lock_timeout_seconds: float = Field(
        default=120.0,
        description=(
            "How long opening the warehouse retries while another process holds the DuckDB "
            "file lock, before the step fails naming that process."
        ),
    )

    memory_limit: str | None = Field(
        default_factory=memory_limit,
        description=(
            "DuckDB's memory_limit for each session (e.g. '1GB'); beyond it DuckDB spills to "
            f"disk. Default from {MEMORY_LIMIT_ENV}; unset or 'none' keeps DuckDB's own (80% of "
            "RAM). A memory_limit in connection_config wins."
        ),
    )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        limit = {"memory_limit": self.memory_limit} if self.memory_limit else {}
        if self.backend == "ducklake":
            with self._ducklake_connection(limit) as conn:
                yield conn
            return
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = connect_waiting_for_lock(
            self.database,
            config={"custom_user_agent": "dagster", **limit, **self.connection_config},
            timeout_seconds=self.lock_timeout_seconds,
        )
        # Closed however the block ends: a step that raised would otherwise keep the file open
        # (and locked) for the rest of the process.
        try:
            # Pinned so TIMESTAMPTZ parsing and printing never depend on the host's zone.
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute("SET enable_progress_bar = false")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _ducklake_connection(self, limit: dict[str, str]) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self.ducklake_catalog:
            raise ValueError(
                f"warehouse backend ducklake needs its catalog: set {CATALOG_ENV} to a libpq "
                "connection string of a PostgreSQL database (e.g. 'host=db dbname=lake user=ml')"
            )
        data = self.ducklake_data_path or str(settings.data_dir() / "warehouse" / "ducklake")
        with ducklake_connection(
            catalog_dsn=self.ducklake_catalog,
            data_path=data,
            extensions_dir=settings.cache_dir() / "duckdb_extensions" / duckdb.__version__,
            config={
                "custom_user_agent": "dagster",
                "temp_directory": str(spill_directory()),
                **limit,
                **self.connection_config,
            },
            policy=RetryPolicy(self.conflict_attempts, self.conflict_backoff_seconds),
        ) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute("SET enable_progress_bar = false")
            yield conn  # type: ignore[misc]  # a DuckDB connection in all but its class


def spill_directory() -> Path:
    """Where a DuckLake session spills beyond its memory_limit: this process's own directory.

    A session on DuckLake is an in-memory DuckDB, whose default is `.tmp` in the working
    directory: two writer processes started in one directory shared it, and the first to
    finish removed it under the other, failing its next spill (measured in `make bench`'s
    backfill_multiwriter: "Cannot open file .tmp/duckdb_temp_storage_S192K-0.tmp"). The embedded
    file spills beside itself (`<file>.tmp`), one process at a time."""
    path = settings.cache_dir() / "duckdb_spill" / str(os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)  # DuckDB makes only the last level
    return path


def warehouse_resource(path: str | None = None) -> Warehouse:
    """The warehouse resource; the file defaults to `data/warehouse/warehouse.duckdb`."""
    return Warehouse(database=path or str(settings.warehouse_path()))
