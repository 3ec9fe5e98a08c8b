"""Dagster's SQLite event log writes a batch of events in one transaction per shard file.

Why: a single-run backfill over N daily partitions logs 12 events per day for raw ->
validated/quarantine (a planned and a done materialization per asset, one record per daily
check; 18 with features), and Dagster 1.13.27's SQLite event log stores each on its own: 3-5
connections, 4-8 SQLAlchemy statements built and compiled, the event serialized 2-3 times (and a
planned check once per partition). Measured on the 2-core box (load 2.5), `sqlite_durability`
already installed: 131 ms per one-row day, about 11 ms an event, so 5,698 days took about 750 s
where a DuckDB script takes half a second (issue 13). With batches: 5.3 ms per day (48 s for the
5,698 days, `benchmarks` figure `many_small_partitions`); what is left is mostly Dagster building
and serializing the events.

What changes, and what does not:
- `SqliteEventLogStorage.store_event_batch` writes a batch as `store_event` writes each event,
  the same rows in the same tables with the same ids, but with one `executemany` per table and
  one transaction per shard (the run's file, then the index). Dagster calls it only when
  `DAGSTER_EVENT_BATCH_SIZE` > 0, for the events it already marks as one batch: the per-partition
  materializations of a range step and the planned events of a new run. `install` sets 1000
  unless the variable is set (0 turns Dagster's batching off again).
- `store_event` honours `core.event_buffer.buffered_events`: events this thread stores inside
  that block are written as one batch when it ends. Dagster never batches check evaluations;
  `core.checks.record_days` logs a range's per-day records inside it.
- Whatever the fast path does not cover (an evaluation with no planned row, runless or
  unpartitioned ones) goes through Dagster's own per-event code, inside the same transaction.
- A batch is one transaction: a killed process loses the batch it was writing, never part of it.
  A failed batch rolls back whole, and Dagster (or `buffered_events`) then stores its events one
  by one, so nothing is written twice.
`ml_assets_tests/test_event_log_batches.py` holds every table of both shards equal to what
Dagster's per-event path writes for the same events.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster_shared.serdes import serialize_value
from sqlalchemy.engine import Connection

from ml_assets import sqlite_durability
from ml_assets.core.event_buffer import buffer_for
from ml_assets.event_log_rows import (
    store_asset_keys,
    store_planned_checks,
    update_check_evaluations,
)

BATCH_SIZE = (
    1000  # DAGSTER_EVENT_BATCH_SIZE unless set: events per transaction in Dagster's batches
)
# Event types as stored (`event_type_value`): which rows the index shard mirrors, and of what.
ASSET_KINDS = {t.value for t in ASSET_EVENTS}
CHECK_KINDS = {t.value for t in ASSET_CHECK_EVENTS}
MIRRORED = ASSET_KINDS | CHECK_KINDS | {t.value for t in EVENT_TYPE_TO_PIPELINE_RUN_STATUS}
PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED.value
MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION.value
CHECK_PLANNED = dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value
_DIRECT = {
    PLANNED,
    MATERIALIZATION,
    CHECK_PLANNED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
}
_NEEDED = (
    "_event_to_row",
    "_event_insert_timestamp",
    "_store_asset_event_tags",
    "_get_asset_entry_values",
    "_update_asset_check_evaluation",
    "store_asset_check_event",
    "_has_asset_key_index_cols_on_connection",
)
_state = threading.local()


class _Shards:
    """A batch's connections: one per shard file, each in one transaction until `finish`."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.connections: dict[str, Connection] = {}

    def connection(self, shard: str) -> Connection:
        conn = self.connections.get(shard)
        if conn is None:
            conn = sqlite_durability.shard_engine(self.storage, shard).connect()
            conn.begin()
            self.connections[shard] = conn
        return conn

    def finish(self, ok: bool) -> None:
        # Run shards were opened first: their rows commit before the index mirrors them.
        for conn in self.connections.values():
            try:
                conn.commit() if ok else conn.rollback()
            finally:
                conn.close()


def install() -> None:
    """Patch the SQLite event log of this process (idempotent; a no-op for a Dagster whose
    storage changed shape, which then keeps its own per-event writes)."""
    storage = sqlite_event_log.SqliteEventLogStorage
    if getattr(storage.store_event_batch, "_ml_assets_batched", False):
        return
    if any(not hasattr(storage, name) for name in _NEEDED):
        return
    sqlite_durability.cache_event_log_engines()
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(BATCH_SIZE))
    connect, store_one, has_table = storage._connect, storage.store_event, storage.has_table

    @contextmanager
    def _connect(self: Any, shard: str) -> Iterator[Connection]:
        shards = getattr(_state, "shards", None)
        if shards is not None and shards.storage is self:
            yield shards.connection(shard)  # inside a batch: its transaction on that shard
            return
        with connect(self, shard) as conn:
            yield conn

    def store_event(self: Any, event: EventLogEntry) -> None:
        buffer = buffer_for(self)
        if buffer is not None and getattr(_state, "shards", None) is None:
            buffer.append(event)  # stored with the rest when `buffered_events` ends
            return
        store_one(self, event)

    def store_event_batch(self: Any, events: Sequence[EventLogEntry]) -> None:
        with self._db_lock:
            shards = _state.shards = _Shards(self)
            ok = False
            try:
                _write(self, shards, list(events))
                ok = True
            finally:
                _state.shards = None
                shards.finish(ok)

    def _has_table(self: Any, table_name: str) -> bool:
        # Asked once or twice per event (`supports_asset_checks`, the tags table), each time on a
        # new engine and connection. A table that exists does not go away while the storage lives.
        found: set[str] = self.__dict__.setdefault("_ml_assets_tables", set())
        if table_name not in found and has_table(self, table_name):
            found.add(table_name)
        return table_name in found

    store_event_batch._ml_assets_batched = True  # type: ignore[attr-defined]
    storage._connect = _connect  # type: ignore[method-assign]
    storage.store_event = store_event  # type: ignore[method-assign]
    storage.store_event_batch = store_event_batch  # type: ignore[method-assign]
    storage.has_table = _has_table  # type: ignore[method-assign]


def _write(storage: Any, shards: _Shards, events: list[EventLogEntry]) -> None:
    """What `SqliteEventLogStorage.store_event` does for each event, table by table."""
    rows = [_row(storage, e) for e in events]  # each event serialized once, its JSON reused below
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    for run_id, run_rows in by_run.items():
        shards.connection(run_id).execute(
            sqlite_event_log.SqlEventLogStorageTable.insert(), run_rows
        )
    mirrored = [
        (e, r) for e, r in zip(events, rows, strict=True) if r["dagster_event_type"] in MIRRORED
    ]
    if not mirrored:
        return
    index = shards.connection(sqlite_event_log.INDEX_SHARD_NAME)
    ids = _insert_mirrored(index, [r for _, r in mirrored])
    stored = [(e, r, i) for (e, r), i in zip(mirrored, ids, strict=True)]
    assets = [(e, r, i) for e, r, i in stored if r["dagster_event_type"] in ASSET_KINDS]
    if assets:
        storage._store_asset_event_tags(index, [e for e, _, _ in assets], [i for *_, i in assets])
        store_asset_keys(storage, index, assets)
    checks = [(e, r, i) for e, r, i in stored if r["dagster_event_type"] in CHECK_KINDS]
    if checks:
        _store_checks(storage, index, checks)


def _row(storage: Any, event: EventLogEntry) -> dict[str, Any]:
    """`_event_to_row` (the `event_logs` columns), with the asset key and partition read straight
    from the event data for the kinds a range run logs by the thousand: Dagster's properties
    build the event type enum up to a dozen times per call."""
    dagster_event = event.dagster_event
    kind = dagster_event.event_type_value if dagster_event else None
    if kind not in _DIRECT:
        return storage._event_to_row(event)
    data = dagster_event.event_specific_data
    if kind == PLANNED:
        key, partition = data.asset_key, data.partition
    elif kind == MATERIALIZATION:
        key, partition = data.materialization.asset_key, data.materialization.partition
    else:  # check events: Dagster gives them no asset key or partition column
        key, partition = None, None
    return {
        "run_id": event.run_id,
        "event": serialize_value(event),
        "dagster_event_type": kind,
        "timestamp": storage._event_insert_timestamp(event),
        "step_key": dagster_event.step_key,
        "asset_key": key.to_string() if key else None,
        "partition": partition or None,
    }


def _insert_mirrored(index: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert the index shard's copies; return their ids, in order. One `executemany` (an
    INSERT ... RETURNING of many rows costs SQLAlchemy more Python per row than SQLite its
    work). SQLite numbers rows of one transaction consecutively: the batch holds the shard's
    write lock from its first INSERT to its commit, so nobody else can insert in between, which
    the count below checks."""
    table = sqlite_event_log.SqlEventLogStorageTable
    index.execute(table.insert(), rows)
    last = index.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
    first = last - len(rows) + 1
    between = db.select(db.func.count()).where(table.c.id.between(first, last))
    if index.execute(between).scalar_one() != len(rows):
        raise dg.DagsterInvariantViolationError("event ids of a batch are not consecutive")
    return list(range(first, last + 1))


def _store_checks(
    storage: Any, index: Connection, checks: list[tuple[EventLogEntry, dict[str, Any], int]]
) -> None:
    """Check events in order, consecutive ones of a kind together: planned evaluations, and
    evaluations of a partition in a run, with one statement each; anything else (runless or
    unpartitioned results) through Dagster's own code."""
    if not storage.supports_asset_checks:
        raise dg.DagsterInvariantViolationError(
            "Asset checks require a database schema migration. Run `dagster instance migrate`."
        )
    writers = {"planned": lambda group: store_planned_checks(index, group)}
    writers["partition"] = lambda group: update_check_evaluations(storage, index, group)
    writers["other"] = lambda group: [storage.store_asset_check_event(e, i) for e, _, i in group]
    for how, group in groupby(checks, key=_check_path):
        writers[how](list(group))


def _check_path(item: tuple[EventLogEntry, dict[str, Any], int]) -> str:
    event = item[0]
    if item[1]["dagster_event_type"] == CHECK_PLANNED:
        return "planned"
    partition = getattr(event.get_dagster_event().event_specific_data, "partition", None)
    return "partition" if event.run_id and partition is not None else "other"
