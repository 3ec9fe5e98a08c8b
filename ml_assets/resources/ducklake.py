"""The multi-writer warehouse backend: DuckLake, catalog in PostgreSQL, data files in a folder.

DuckLake keeps table metadata in a catalog database and rows in Parquet files, so many processes
can open the warehouse at once (no file lock, no `duckdb_warehouse` pool of 1). Two things differ
from the embedded file, and this module absorbs both so the layers' SQL stays the same:

- Extensions load from the `duckdb-extension-ducklake` / `duckdb-extension-postgres` wheels,
  never from the network: autoinstall and autoload are off, and each file is `LOAD`ed by path.
  DuckDB derives an extension's init symbol from its file name, and the postgres wheel ships
  `postgres.duckdb_extension` for the extension named `postgres_scanner`, so we load it through
  a symlink of that name.
- Writers conflict. DuckLake commits optimistically and, measured here, two transactions that
  DELETE from the same table conflict even when their partitions are disjoint (4 processes x 15
  overwrites: 32 of 60 failed). `RetryingConnection` records the statements of a transaction and,
  when its COMMIT fails on a conflict, runs them again in a new transaction after a bounded,
  jittered backoff: as if the whole transaction had started later. That is exact for this
  project's window rewrites (delete the window, insert from SQL over bound parameters). It is not
  for a transaction whose Python code acted on a value it read before or inside it: the replay
  sends the same statements with the same parameters.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

CATALOG_ALIAS = "warehouse"
# Substrings of the errors that mean "another writer committed first; try again".
# DuckLake: 'Failed to commit DuckLake transaction.\nTransaction conflict - attempting to ...'.
CONFLICT_MARKERS = (
    "Transaction conflict",
    # DuckLake retries its snapshot-id race by itself (ducklake_max_retry_count); past that the
    # catalog's unique key surfaces.
    'duplicate key value violates unique constraint "ducklake_',
    "could not serialize access",
)
# DuckLake has no PRIMARY KEY or UNIQUE constraints ("not supported in DuckLake"). The layers'
# DDL declares one (`<ds>.source_files.checksum`); on this backend it is dropped from CREATE
# TABLE, so that uniqueness rests on the code that writes the table.
_KEY_CONSTRAINT = re.compile(r"\s+(PRIMARY\s+KEY|UNIQUE)\b(?=\s*[,)\n])", re.IGNORECASE)
# Nor CHECK constraints: `governance.model_decisions.decision` declares one (its values are
# checked in Python before each insert). One level of nested parentheses, as in `x IN (...)`.
_CHECK_CONSTRAINT = re.compile(r"\s+CHECK\s*\((?:[^()]|\([^()]*\))*\)", re.IGNORECASE)


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a write conflict a later attempt can get past."""
    return isinstance(exc, duckdb.Error) and any(m in str(exc) for m in CONFLICT_MARKERS)


def extension_files() -> dict[str, Path]:
    """Extension name -> the wheel's file for this duckdb version (no download, ever)."""
    import duckdb_extension_ducklake
    import duckdb_extension_postgres

    version = f"v{duckdb.__version__}"
    files = {
        "postgres_scanner": Path(duckdb_extension_postgres.__file__).parent
        / "extensions"
        / version
        / "postgres.duckdb_extension",
        "ducklake": Path(duckdb_extension_ducklake.__file__).parent
        / "extensions"
        / version
        / "ducklake.duckdb_extension",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"DuckLake backend: no extension file for duckdb {duckdb.__version__} at {missing}; "
            "install duckdb-extension-ducklake and duckdb-extension-postgres of the same version "
            "as duckdb (constraints.txt)"
        )
    return files


def loadable_extensions(folder: Path) -> list[Path]:
    """Symlinks named as DuckDB expects (`<extension name>.duckdb_extension`) to the wheels'
    files, made in `folder` (atomically: other processes may be doing the same)."""
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for name, target in extension_files().items():
        link = folder / f"{name}.duckdb_extension"
        if not (link.is_symlink() and link.resolve() == target.resolve()):
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            os.replace(tmp, link)
        links.append(link)
    return links


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def attach(
    conn: duckdb.DuckDBPyConnection,
    *,
    catalog_dsn: str,
    data_path: str,
    extensions_dir: Path,
    retry: RetryPolicy,
) -> None:
    """Load the extensions from the wheels and make the DuckLake the session's default catalog."""
    for link in loadable_extensions(extensions_dir):
        conn.execute(f"LOAD {_quote(str(link))}")
    if "://" not in data_path:
        Path(data_path).mkdir(parents=True, exist_ok=True)
        data_path = str(Path(data_path).resolve()) + "/"
    sql = (
        f"ATTACH {_quote('ducklake:postgres:' + catalog_dsn)} AS {CATALOG_ALIAS} "
        f"(DATA_PATH {_quote(data_path)})"
    )
    # The first ATTACH of a new catalog creates its tables; processes starting together race.
    retry.run(lambda: conn.execute(sql), what="ATTACH of the DuckLake catalog")
    conn.execute(f"USE {CATALOG_ALIAS}")


class WarehouseConflict(RuntimeError):
    """A write kept conflicting with other writers after every allowed attempt."""


class RetryPolicy:
    """Bounded retries with exponential, jittered backoff for write conflicts."""

    def __init__(self, attempts: int, base_delay: float, max_delay: float = 2.0) -> None:
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.retries = 0  # conflicts retried over this policy's life (metadata, tests)

    def delay(self, attempt: int) -> float:
        """Sleep before attempt `attempt` (2, 3, ...): full jitter, so writers spread out."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 2)))

    def run(self, fn: Callable[[], Any], *, what: str, on_retry: Callable[[], None] = lambda: None):
        """`fn()`, again after a conflict, at most `attempts` times in all."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except duckdb.Error as exc:
                if not is_conflict(exc):
                    raise
                if attempt == self.attempts:
                    raise WarehouseConflict(
                        f"{what} still conflicted with other writers after {attempt} attempt(s); "
                        "raise the warehouse's conflict_attempts or write fewer overlapping "
                        f"transactions at once. Last error: {exc}"
                    ) from exc
                self.retries += 1
                pause = self.delay(attempt + 1)
                log.info("%s: write conflict (attempt %d), retrying in %.2fs", what, attempt, pause)
                time.sleep(pause)
                on_retry()
        raise AssertionError("unreachable")


READS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "DESCRIBE", "SHOW", "SUMMARIZE", "PRAGMA"})


def _keyword(query: object) -> str:
    if not isinstance(query, str):
        return ""
    head = query.lstrip().split(None, 1)
    return head[0].rstrip(";").upper() if head else ""


def adapt(query: object) -> object:
    """The statement as DuckLake accepts it: CREATE TABLE without PRIMARY KEY / UNIQUE / CHECK."""
    if isinstance(query, str) and "CREATE" in query.upper():
        return _CHECK_CONSTRAINT.sub("", _KEY_CONSTRAINT.sub("", query))
    return query


class RetryingConnection:
    """A DuckDB connection whose writes survive conflicts with other writers.

    Inside BEGIN ... COMMIT every statement (and every `register`/`unregister` of a Python
    object, which the statements may read) is recorded; a COMMIT that conflicts replays them in a
    new transaction, up to the policy's attempts. A statement outside a transaction is its own
    transaction and is simply run again. Everything else is the wrapped connection's.
    """

    def __init__(self, conn: duckdb.DuckDBPyConnection, policy: RetryPolicy) -> None:
        self._conn = conn
        self._policy = policy
        self._log: list[tuple[str, tuple[Any, ...]]] | None = None

    @property
    def conflict_retries(self) -> int:
        return self._policy.retries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __enter__(self) -> RetryingConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()

    def _call(self, method: str, *args: Any) -> Any:
        return getattr(self._conn, method)(*args)

    def _statement(self, method: str, query: object, *rest: Any) -> Any:
        query = adapt(query)
        keyword = _keyword(query)
        if keyword in {"BEGIN", "START"}:
            self._conn.execute(query, *rest)
            self._log = []
            return self
        if keyword in {"COMMIT", "END"} and self._log is not None:
            return self._commit(query, *rest)
        if keyword in {"ROLLBACK", "ABORT"}:
            self._log = None
            self._conn.execute(query, *rest)
            return self
        if self._log is not None:
            self._log.append((method, (query, *rest)))
            result = self._call(method, query, *rest)
        else:
            result = self._policy.run(
                lambda: self._call(method, query, *rest), what=f"statement {keyword}"
            )
        return self if result is self._conn else result

    def _commit(self, query: str, *rest: Any) -> RetryingConnection:
        entries, self._log = self._log or [], None
        first = True

        def attempt() -> None:
            nonlocal first
            if not first:
                self._replay(entries)
            first = False
            self._conn.execute(query, *rest)

        self._policy.run(attempt, what="transaction")
        return self

    def _replay(self, entries: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._conn.execute("BEGIN TRANSACTION")
        try:
            for method, args in entries:
                self._call(method, *args)
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self._conn.execute("ROLLBACK")
            raise

    def execute(self, query: object, *rest: Any) -> Any:
        return self._statement("execute", query, *rest)

    def executemany(self, query: object, *rest: Any) -> Any:
        return self._statement("executemany", query, *rest)

    def sql(self, query: object, **kwargs: Any) -> Any:
        query = adapt(query)
        if self._log is not None and _keyword(query) not in READS:
            # A statement given to sql() runs at once; the replay repeats it through execute.
            self._log.append(("execute", (query, kwargs.get("params"))))
        return self._conn.sql(query, **kwargs)

    def register(self, name: str, obj: object) -> Any:
        if self._log is not None:
            self._log.append(("register", (name, obj)))
        self._conn.register(name, obj)
        return self

    def unregister(self, name: str) -> Any:
        if self._log is not None:
            self._log.append(("unregister", (name,)))
        self._conn.unregister(name)
        return self


@contextlib.contextmanager
def ducklake_connection(
    *,
    catalog_dsn: str,
    data_path: str,
    extensions_dir: Path,
    config: dict[str, Any],
    policy: RetryPolicy,
) -> Iterator[RetryingConnection]:
    """An in-memory DuckDB session whose default catalog is the DuckLake; closed at the end."""
    conn = duckdb.connect(
        ":memory:",
        config={
            **config,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    try:
        attach(
            conn,
            catalog_dsn=catalog_dsn,
            data_path=data_path,
            extensions_dir=extensions_dir,
            retry=policy,
        )
        yield RetryingConnection(conn, policy)
    finally:
        conn.close()
