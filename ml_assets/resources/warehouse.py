"""The warehouse: one DuckDB file, through dagster-duckdb's resource.

DuckDB allows a single writer process. Steps that open it share the `duckdb_warehouse` pool
(limit 1, see dagster.yaml), so runs of this project queue for the slot rather than collide. A
process outside the pool (a notebook, the DuckDB CLI, a `read_only` reader) can still hold the
file's lock: a step then retries for `lock_timeout_seconds` and fails naming the holder's PID.
"""

from __future__ import annotations

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

WAREHOUSE_POOL = "duckdb_warehouse"
# DuckDB 1.x/2.x: 'IO Error: Could not set lock on file "<path>": Conflicting lock is held in
# <program> (PID <n>) ...'. The lock is a non-blocking fcntl lock, so DuckDB itself never waits.
LOCK_CONFLICT = "Could not set lock on file"
HOLDER_PID = re.compile(r"\(PID (\d+)\)")


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
    a bounded time for another process's lock."""

    lock_timeout_seconds: float = Field(
        default=120.0,
        description=(
            "How long opening the warehouse retries while another process holds the DuckDB "
            "file lock, before the step fails naming that process."
        ),
    )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = connect_waiting_for_lock(
            self.database,
            config={"custom_user_agent": "dagster", **self.connection_config},
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


def warehouse_resource(path: str | None = None) -> Warehouse:
    """The warehouse resource; the file defaults to `data/warehouse/warehouse.duckdb`."""
    return Warehouse(database=path or str(settings.warehouse_path()))
