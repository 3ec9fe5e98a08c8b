"""Index-shard rows of a batch of events, written with one statement per table where Dagster
writes one per event (see `ml_assets.event_log_batches`). Each function states the per-event
behaviour of Dagster 1.13.27's `SqlEventLogStorage` that it reproduces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable
from sqlalchemy.engine import Connection

IN_CHUNK = 1000  # ids per `IN (...)`, far below SQLite's limit on bound variables


def store_asset_keys(
    storage: Any, conn: Connection, events: Sequence[tuple[EventLogEntry, dict[str, Any], int]]
) -> None:
    """The `asset_keys` row of each asset in the batch, as after `_store_asset_event` of every
    event in order. Each event type sets a fixed set of columns (a materialization its record,
    run and time; a planned event its run and time; an observation its time), so the row ends
    with each column from the last event setting it: the last event of each type per asset,
    applied in order, writes exactly that, with one upsert per asset instead of one per event."""
    has_index_cols = storage._has_asset_key_index_cols_on_connection(conn)
    last: dict[tuple[str, str], int] = {}
    for n, (_, row, _) in enumerate(events):
        if row["asset_key"] is not None:
            last[(row["asset_key"], row["dagster_event_type"])] = n
    per_asset: dict[str, list[int]] = {}
    for (key, _), n in last.items():
        per_asset.setdefault(key, []).append(n)
    for key, positions in per_asset.items():
        values: dict[str, Any] = {}
        for n in sorted(positions):
            event, _, event_id = events[n]
            values.update(storage._get_asset_entry_values(event, event_id, has_index_cols))
        if not values:
            continue
        where = AssetKeyTable.c.asset_key == key
        if conn.execute(db.select(AssetKeyTable.c.asset_key).where(where)).first():
            conn.execute(AssetKeyTable.update().values(**values).where(where))
        else:
            conn.execute(AssetKeyTable.insert().values(asset_key=key, **values))


_UPDATE = (
    AssetCheckExecutionsTable.update()
    .where(
        db.and_(
            AssetCheckExecutionsTable.c.asset_key == db.bindparam("k_asset_key"),
            AssetCheckExecutionsTable.c.check_name == db.bindparam("k_check_name"),
            AssetCheckExecutionsTable.c.run_id == db.bindparam("k_run_id"),
            AssetCheckExecutionsTable.c.partition == db.bindparam("k_partition"),
        )
    )
    .values(
        execution_status=db.bindparam("v_status"),
        evaluation_event=db.bindparam("v_event"),
        evaluation_event_timestamp=db.bindparam("v_timestamp"),
        evaluation_event_storage_id=db.bindparam("v_storage_id"),
        materialization_event_storage_id=db.bindparam("v_materialization_id"),
    )
)


def update_check_evaluations(
    storage: Any, conn: Connection, events: Sequence[tuple[EventLogEntry, dict[str, Any], int]]
) -> None:
    """Resolve each partitioned evaluation's planned row, as `_update_asset_check_evaluation`
    does per event: one `executemany` UPDATE keyed like Dagster's (asset, check, run,
    partition), reusing the event as serialized for its event row. An evaluation whose row was
    not planned (a step launcher's, say) is then stored by Dagster's own method, which inserts it."""
    if not events:
        return
    params = []
    for event, row, event_id in events:
        evaluation = event.get_dagster_event().event_specific_data
        target = evaluation.target_materialization_data
        status = (
            AssetCheckExecutionRecordStatus.SUCCEEDED
            if evaluation.passed
            else AssetCheckExecutionRecordStatus.FAILED
        )
        params.append(
            {
                "k_asset_key": evaluation.asset_key.to_string(),
                "k_check_name": evaluation.check_name,
                "k_run_id": event.run_id,
                "k_partition": evaluation.partition,
                "v_status": status.value,
                "v_event": row["event"],
                "v_timestamp": row["timestamp"],
                "v_storage_id": event_id,
                "v_materialization_id": target.storage_id if target else None,
            }
        )
    updated = conn.execute(_UPDATE, params).rowcount
    if updated == len(events):
        return
    resolved: set[int] = set()
    ids = [event_id for _, _, event_id in events]
    for i in range(0, len(ids), IN_CHUNK):
        chunk = ids[i : i + IN_CHUNK]
        column = AssetCheckExecutionsTable.c.evaluation_event_storage_id
        found = conn.execute(db.select(column).where(column.in_(chunk))).scalars()
        resolved.update(found)
    if updated > len(resolved):
        raise dg.DagsterInvariantViolationError(
            f"{updated} asset check rows updated for {len(events)} evaluations: duplicate "
            "AssetCheckPlanned events"
        )
    for event, _, event_id in events:
        if event_id not in resolved:
            storage._update_asset_check_evaluation(event, event_id)


def store_planned_checks(
    conn: Connection, events: Sequence[tuple[EventLogEntry, dict[str, Any], int]]
) -> None:
    """One PLANNED row per partition of each planned check evaluation, as
    `_store_asset_check_evaluation_planned` writes them, but with the event serialized once: it
    serializes it again for every partition (5,698 times for a 16-year range, per check)."""
    rows = []
    for event, row, event_id in events:
        planned = event.get_dagster_event().event_specific_data
        subset = planned.partitions_subset
        for partition in subset.get_partition_keys() if subset else [None]:
            rows.append(
                {
                    "asset_key": planned.asset_key.to_string(),
                    "check_name": planned.check_name,
                    "partition": partition,
                    "run_id": event.run_id,
                    "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                    "evaluation_event": row["event"],
                    "evaluation_event_timestamp": row["timestamp"],
                    "evaluation_event_storage_id": event_id,
                }
            )
    if rows:
        conn.execute(AssetCheckExecutionsTable.insert(), rows)
