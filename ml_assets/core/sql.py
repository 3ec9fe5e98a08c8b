"""Small helpers for the SQL that lives in `.sql` files beside the code that runs it.

Values are always bound parameters. Only identifiers and contract-derived expressions, which come
from a validated spec and never from data, are rendered into the text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb


def ident(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """Render a spec value (never row data) as a SQL literal."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


@cache
def _read(path: Path) -> str:
    return path.read_text()


def render(sql_file: Path, **fragments: str) -> str:
    """Load a `.sql` file and fill its `{name}` slots with generated identifier lists."""
    return _read(sql_file).format(**fragments)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: a partition write either lands whole or leaves the previous state."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def table_exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


@contextmanager
def rewrite_window(
    conn: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    start: object,
    end: object,
    *,
    column: str = "_partition_date",
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction that first deletes the window [start, end] of every table; the block
    inserts the new rows. Either all of it lands or the previous rows stay: a failed or killed
    run never leaves a half-written window, and a rerun of the same window is idempotent."""
    with transaction(conn):
        for table in tables:
            conn.execute(
                f"DELETE FROM {table} WHERE {ident(column)} BETWEEN $start AND $end",
                {"start": start, "end": end},
            )
        yield conn


def create_tables(conn: duckdb.DuckDBPyConnection, ddl_file: Path, **fragments: str) -> None:
    """Run a layer's `CREATE ... IF NOT EXISTS` file (slots: quoted names and column lists)."""
    conn.execute(render(ddl_file, **fragments))
