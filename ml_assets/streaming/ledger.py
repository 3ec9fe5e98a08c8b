"""Exactly-once append of Kafka messages into the warehouse.

Each message is stored with its topic, partition and offset, and the next offset of every
partition it came from is written in the SAME DuckDB transaction as its rows. The warehouse, not
Kafka, is therefore the truth about what was consumed: a consumer killed at any point either
committed the batch with its offsets or committed nothing, and a restarted consumer assigns its
partitions at the stored offsets. Kafka's own group commit follows the DuckDB commit as a
convenience (lag dashboards); it is never read back. The primary key (topic, partition, offset)
makes a duplicate a loud error rather than a silent second row.

A message that cannot be placed (not JSON, not an object, no or unparseable event time) goes whole
to the stream quarantine with its reason and offset; it never stops the stream. Fields keep
their text, like raw, so a wrong type in a field is validated's quarantine reason later.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import confluent_kafka as ck
import duckdb
import pyarrow as pa

from ml_assets.core.sql import create_tables, ident, render, transaction

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class StreamTarget:
    """Where one topic's messages go: a schema, the fields kept (as text) and the event time."""

    schema: str
    columns: tuple[str, ...]
    event_time_field: str

    def table(self, name: str) -> str:
        return f"{ident(self.schema)}.{ident(name)}"


@dataclass
class Batch:
    """One polled batch, parsed: rows to keep, messages to quarantine, next offset per partition."""

    rows: list[dict[str, object]] = field(default_factory=list)
    quarantined: list[dict[str, object]] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def days(self) -> set[dt.date]:
        """Event-time days the batch touched: the partitions to rebuild downstream."""
        return {r["_partition_date"] for r in self.rows}


def ensure_tables(conn: duckdb.DuckDBPyConnection, target: StreamTarget) -> None:
    create_tables(
        conn,
        SQL / "tables.sql",
        schema=ident(target.schema),
        rows_table=target.table("stream_rows"),
        quarantine_table=target.table("stream_quarantine"),
        offsets_table=target.table("stream_offsets"),
        columns=",\n    ".join(f"{ident(c)} VARCHAR" for c in target.columns),
    )


def stored_offsets(
    conn: duckdb.DuckDBPyConnection, target: StreamTarget, topic: str
) -> dict[int, int]:
    """Next offset to read per partition, as committed with the rows."""
    rows = conn.execute(
        f'SELECT "partition", next_offset FROM {target.table("stream_offsets")} WHERE topic = ?',
        [topic],
    ).fetchall()
    return dict(rows)


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def parse(messages: list[ck.Message], target: StreamTarget, at: dt.datetime) -> Batch:
    """Split messages into rows and quarantined messages (reason codes: `not_json`,
    `not_an_object`, `no_event_time`, `unparseable_event_time: <value>`)."""
    batch = Batch()
    for m in messages:
        topic, part, offset = m.topic(), m.partition(), m.offset()
        batch.next_offsets[(topic, part)] = offset + 1
        key = m.key().decode("utf-8", "replace") if m.key() is not None else None
        reason, record = None, None
        try:
            record = json.loads(m.value())
        except (ValueError, TypeError):
            reason = "not_json"
        if reason is None and not isinstance(record, dict):
            reason = "not_an_object"
        if reason is None:
            raw_time = record.get(target.event_time_field)
            if raw_time in (None, ""):
                reason = "no_event_time"
            else:
                try:
                    when = dt.datetime.fromisoformat(str(raw_time))
                except ValueError:
                    reason = f"unparseable_event_time: {str(raw_time)[:100]}"
        if reason is not None:
            batch.quarantined.append(
                {
                    "_topic": topic,
                    "_partition": part,
                    "_offset": offset,
                    "_key": key,
                    "_payload": m.value(),
                    "_reason": reason,
                    "_ingested_at": at,
                }
            )
            continue
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        row = {c: _text(record.get(c)) for c in target.columns}
        row.update(
            _event_time=when,
            _partition_date=when.date(),
            _topic=topic,
            _partition=part,
            _offset=offset,
            _key=key,
            _ingested_at=at,
        )
        batch.rows.append(row)
    return batch


def append(conn: duckdb.DuckDBPyConnection, target: StreamTarget, batch: Batch) -> None:
    """Rows, quarantined messages and next offsets in one transaction: all or nothing."""
    with transaction(conn):
        for table, records in (
            ("stream_rows", batch.rows),
            ("stream_quarantine", batch.quarantined),
        ):
            if records:
                arrow = pa.Table.from_pylist(records)
                names = ", ".join(ident(c) for c in arrow.column_names)
                conn.register("_stream_batch", arrow)
                conn.execute(
                    f"INSERT INTO {target.table(table)} ({names}) SELECT * FROM _stream_batch"
                )
                conn.unregister("_stream_batch")
        for (topic, part), nxt in batch.next_offsets.items():
            conn.execute(
                render(SQL / "offsets_upsert.sql", offsets_table=target.table("stream_offsets")),
                {
                    "topic": topic,
                    "partition": part,
                    "next_offset": nxt,
                    "at": dt.datetime.now(dt.UTC),
                },
            )


def assign_from_store(
    consumer: ck.Consumer,
    conn: duckdb.DuckDBPyConnection,
    target: StreamTarget,
    topic: str,
    timeout: float = 10.0,
) -> list[int]:
    """Assign every partition of `topic` at its stored offset (the beginning if none)."""
    meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
    stored = stored_offsets(conn, target, topic)
    parts = sorted(meta.partitions)
    consumer.assign(
        [ck.TopicPartition(topic, p, stored.get(p, ck.OFFSET_BEGINNING)) for p in parts]
    )
    return parts


def poll_batch(consumer: ck.Consumer, max_messages: int, max_seconds: float) -> list[ck.Message]:
    """At most `max_messages` messages within about `max_seconds` (bounded for a sensor tick).
    Partition-EOF and other per-message errors are skipped; they carry no record. Returns early
    once caught up (an empty poll after some messages)."""
    deadline = time.monotonic() + max_seconds
    out: list[ck.Message] = []
    while len(out) < max_messages:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        polled = consumer.consume(min(max_messages - len(out), 10_000), min(left, 0.5))
        if not polled and out:
            break  # caught up: hand over what we have rather than idle out the tick
        out.extend(m for m in polled if m.error() is None)
    return out


def consume_once(
    consumer: ck.Consumer,
    conn: duckdb.DuckDBPyConnection,
    target: StreamTarget,
    *,
    max_messages: int,
    max_seconds: float,
) -> Batch:
    """One bounded batch: poll, parse, append exactly once, then group-commit (convenience)."""
    messages = poll_batch(consumer, max_messages, max_seconds)
    batch = parse(messages, target, dt.datetime.now(dt.UTC))
    if batch.next_offsets:
        append(conn, target, batch)
        consumer.commit(
            offsets=[ck.TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()],
            asynchronous=False,
        )
    return batch
