"""The stream sensor: each tick appends one bounded batch of a dataset's Kafka topic to the
warehouse's stream ledger, exactly once, and requests the daily layers for the days it touched.

Unlike the landing sensor, this one writes the warehouse: the ledger's rows and offsets must be
committed together, and only the warehouse can hold them. It opens the file with a short,
bounded wait for the lock (a run in the `duckdb_warehouse` pool may hold it for the length of a
step); if the wait runs out the tick consumes nothing and says so, and the next tick resumes from
the same stored offsets, so nothing is lost or read twice. The consumer is made per tick and
assigned at the stored offsets, so a tick in any process (the daemon, a test, the demo) resumes
where the last committed one ended.

A batch's days become runs of `<ds>__daily_layers` (raw -> validated/quarantine -> features),
one per run of consecutive days, with the range tags of a single-run backfill. The eager
automation condition only ever requests the newest day, so a late message's day is rebuilt by
this run, not by automation. Days after the newest partition wait for it (the daily schedule's
run of that day reads the ledger).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import confluent_kafka as ck
import dagster as dg
import duckdb

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.layers.ingest.files import last_partition_day
from ml_assets.resources.warehouse import Warehouse, WarehouseLockTimeout, connect_waiting_for_lock
from ml_assets.streaming import ledger
from ml_assets.streaming.target import stream_target

STREAM_OFFSETS_TAG = "ml_assets/stream_offsets"
# How long a tick waits for the warehouse's write lock before giving the tick up.
LOCK_WAIT_SECONDS = 5.0

# The consumer class; the crash tests replace it in a child process to die at a chosen moment.
new_consumer: Callable[[dict], ck.Consumer] = ck.Consumer


@dataclass(frozen=True)
class Tick:
    batch: ledger.Batch
    ranges: list[tuple[dt.date, dt.date]]  # consecutive days to rebuild, up to the newest
    waiting: list[dt.date]  # days after the newest partition: their daily run reads them


def day_ranges(days: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Runs of consecutive days: {1, 2, 3, 7} -> [(1, 3), (7, 7)]."""
    out: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if out and day - out[-1][1] == dt.timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _open(warehouse: Warehouse, wait: float) -> duckdb.DuckDBPyConnection:
    conn = connect_waiting_for_lock(
        warehouse.database,
        config={"custom_user_agent": "dagster", **warehouse.connection_config},
        timeout_seconds=wait,
    )
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def poll_into_ledger(
    spec: DatasetSpec, warehouse: Warehouse, lock_wait: float = LOCK_WAIT_SECONDS
) -> Tick:
    """One bounded batch from the topic into the ledger, and the days it touched."""
    kafka = spec.source.kafka
    target = stream_target(spec)
    conn = _open(warehouse, lock_wait)
    try:
        ledger.ensure_tables(conn, target)
        consumer = new_consumer(ledger.consumer_config(kafka.bootstrap_servers, kafka.group))
        try:
            ledger.assign_from_store(consumer, conn, target, kafka.topic)
            batch = ledger.consume_once(
                consumer,
                conn,
                target,
                max_messages=kafka.max_messages,
                max_seconds=kafka.max_seconds,
            )
        finally:
            consumer.close()
    finally:
        conn.close()
    newest = last_partition_day(spec)
    ready = {d for d in batch.days if newest is not None and d <= newest}
    return Tick(batch, day_ranges(ready), sorted(batch.days - ready))


def run_requests(spec: DatasetSpec, tick: Tick) -> list[dg.RunRequest]:
    offsets = ",".join(f"{t}:{p}:{o}" for (t, p), o in sorted(tick.batch.next_offsets.items()))
    return [
        dg.RunRequest(
            # The batch's end offsets name it: one run per range per committed batch.
            run_key=f"{spec.name}:stream:{offsets}:{first.isoformat()}",
            tags={
                RANGE_START: first.isoformat(),
                RANGE_END: last.isoformat(),
                STREAM_OFFSETS_TAG: offsets[:200],
            },
        )
        for first, last in tick.ranges
    ]


def build_stream_sensor(spec: DatasetSpec, job_name: str) -> dg.SensorDefinition:
    kafka = spec.source.kafka

    @dg.sensor(
        name=spec.names.sensor("stream"),
        job_name=job_name,
        minimum_interval_seconds=kafka.interval_seconds,
        description=(
            f"Appends up to {kafka.max_messages:,} messages (about {kafka.max_seconds:g} s) of "
            f"Kafka topic `{kafka.topic}` per tick to `{spec.name}.stream_rows` exactly once, and "
            "runs the daily layers for the event-time days they touched."
        ),
    )
    def stream(
        context: dg.SensorEvaluationContext, warehouse: Warehouse
    ) -> dg.SensorResult | dg.SkipReason:
        try:
            tick = poll_into_ledger(spec, warehouse)
        except WarehouseLockTimeout as exc:
            return dg.SkipReason(f"warehouse busy, nothing consumed this tick: {exc}")
        batch = tick.batch
        if not batch.next_offsets:
            return dg.SkipReason(f"no new messages on {kafka.topic}")
        context.log.info(
            f"{batch.messages} message(s): {batch.rows} rows on {len(batch.days)} day(s), "
            f"quarantined {batch.quarantined or 0}; waiting for their partition: "
            f"{[d.isoformat() for d in tick.waiting]}"
        )
        requests = run_requests(spec, tick)
        if not requests:
            return dg.SkipReason(
                f"{batch.messages} message(s) stored; no day of them has a partition yet"
            )
        return dg.SensorResult(run_requests=requests)

    return stream
