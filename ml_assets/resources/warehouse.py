"""The warehouse: one DuckDB file, through dagster-duckdb's resource.

DuckDB allows a single writer process. Steps that open it share the `duckdb_warehouse` pool
(limit 1, see dagster.yaml), and DuckDBResource itself retries on a lock conflict, so concurrent
runs queue rather than fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource

from ml_assets import settings

WAREHOUSE_POOL = "duckdb_warehouse"


class Warehouse(DuckDBResource):
    """DuckDBResource that creates the file's folder and pins the session time zone to UTC."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as conn:
            # DuckDBResource closes the connection only when the block succeeds; a step that
            # raised would otherwise keep the file open for the rest of the process.
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
