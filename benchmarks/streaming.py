"""Streaming figures (issue 15): Kafka topic -> stream ledger throughput against a bare
confluent-kafka consume loop into DuckDB, and end-to-end freshness produce -> validated.

Both run against librdkafka's mock cluster (the Kafka protocol over TCP on 127.0.0.1). The mock
keeps about 5 MB per partition (4 partitions on auto-create) and deletes older messages, so a
round produces at most ~30,000 flights messages (~420 bytes each) before it is consumed: a topic
filled beyond that has lost its oldest messages, and a loop waiting for all of them never ends
(what stalled an earlier version of this benchmark).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from pathlib import Path

import confluent_kafka as ck
import dagster as dg
import duckdb
import pyarrow as pa

from benchmarks.harness import Bench, Figure, Measure, figure
from ml_assets.resources.warehouse import Warehouse
from ml_assets.streaming import sensor
from ml_assets.streaming.demo import (
    QUIET,
    TOPIC,
    Driver,
    Published,
    flights_rows,
    message,
    publish,
    stream_spec,
)
from ml_assets.streaming.mock import MockCluster

GOAL_RATE = 50_000
GOAL_RATIO = 0.7


def _produce(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = ck.Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 10_000}
    )
    for i, (key, value) in enumerate(messages):
        producer.produce(TOPIC, value, key=key)
        if i % 5_000 == 0:
            producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("producer could not deliver every message")


def _ours(spec, database: Path, n: int, deadline_s: float) -> float:
    """The stream sensor's ticks (open the warehouse, consumer at the stored offsets, one
    bounded batch appended exactly once) until `n` messages are in the ledger; messages/s."""
    warehouse = Warehouse(database=str(database))
    got, start = 0, time.perf_counter()
    while got < n:
        if time.perf_counter() - start > deadline_s:
            raise TimeoutError(f"ledger got {got} of {n} messages in {deadline_s} s")
        got += sensor.poll_into_ledger(spec, warehouse).batch.messages
    return n / (time.perf_counter() - start)


def _bare(
    bootstrap: str, database: Path, columns: list[str], positions: dict[int, int], n: int
) -> float:
    """A bare consume loop into DuckDB: consume, the values into Arrow, one INSERT parsing the
    JSON into the same text columns per batch; no offsets, quarantine or transaction."""
    start = time.perf_counter()
    consumer = ck.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bare", "enable.auto.commit": False}
    )
    parts = consumer.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
    consumer.assign(
        [ck.TopicPartition(TOPIC, p, positions.get(p, ck.OFFSET_BEGINNING)) for p in parts]
    )
    conn = duckdb.connect(str(database))
    names = ", ".join(f'"{c}" VARCHAR' for c in columns)
    conn.execute(f"CREATE TABLE IF NOT EXISTS bare ({names}, _partition INTEGER, _offset BIGINT)")
    struct = json.dumps(dict.fromkeys(columns, "VARCHAR")).replace("'", "''")
    got = 0
    while got < n:
        if time.perf_counter() - start > 120:
            raise TimeoutError(f"bare loop got {got} of {n} messages")
        polled = [m for m in consumer.consume(10_000, 0.5) if m.error() is None]
        if not polled:
            continue
        batch = pa.table(
            {
                "v": pa.array([m.value() for m in polled], pa.binary()),
                "p": pa.array([m.partition() for m in polled], pa.int32()),
                "o": pa.array([m.offset() for m in polled], pa.int64()),
            }
        )
        conn.register("batch", batch)
        conn.execute(
            f"INSERT INTO bare SELECT unnest(json_transform(decode(v), '{struct}')), p, o "
            "FROM batch"
        )
        conn.unregister("batch")
        for m in polled:
            positions[m.partition()] = m.offset() + 1
        got += len(polled)
    conn.close()
    consumer.close()
    return n / (time.perf_counter() - start)


@figure("stream_throughput", "(15a) Kafka topic -> stream ledger (msg/s) vs bare consume loop")
def stream_throughput(bench: Bench) -> Figure:
    scratch = bench.scratch("stream_throughput")
    cluster = MockCluster()
    spec = stream_spec(cluster.bootstrap_servers, scratch, name="flights_bench")
    spec = spec.model_copy(
        update={"source": spec.source.model_copy(update={"kafka": _kafka(spec, 50_000, 10.0)})}
    )
    rows = flights_rows(dt.date(2013, 3, 1), 3 if bench.quick else 30)
    positions: dict[int, int] = {}
    ours, bare = [], []
    for r in range(bench.repeats):
        messages = [message({**row, "flight": f"{row['flight']}-{r}"}) for row in rows]
        _produce(cluster.bootstrap_servers, messages)
        n, boot = len(messages), cluster.bootstrap_servers
        # Alternate which side reads first, so neither always gets the warmer page cache.
        for side in ("ours", "bare") if r % 2 == 0 else ("bare", "ours"):
            if side == "ours":
                ours.append(_ours(spec, scratch / "warehouse.duckdb", n, 120))
            else:
                columns = [*spec.columns, "sched_dep_at"]
                bare.append(_bare(boot, scratch / "bare.duckdb", columns, positions, n))
        bench.log(
            f"    round {r}: {len(messages)} messages, ours {ours[-1]:,.0f}/s, bare {bare[-1]:,.0f}/s"
        )
    del cluster
    o, b = Measure("stream sensor ticks -> ledger", ours), Measure("bare consume -> DuckDB", bare)
    ratio = o.median / b.median
    return Figure(
        ours=o,
        baseline=b,
        unit="msg/s",
        ratio=ratio,
        ratio_label="ours / bare (higher is better)",
        goal=f">= {GOAL_RATE:,} msg/s and >= {GOAL_RATIO} of bare",
        meets_goal=o.median >= GOAL_RATE and ratio >= GOAL_RATIO,
        notes=(
            f"{len(rows):,} flights JSON messages per round (mock cluster, 4 partitions); ours "
            "includes opening the warehouse, the consumer, exactly-once offsets, quarantine "
            "triage and the primary key; bare parses the same JSON into the same text columns."
            + (
                f" The bare loop itself reached {b.median:,.0f} msg/s here, under the "
                f"{GOAL_RATE:,}/s goal: the rate is bounded by the mock cluster and the 2 cores "
                "(broker, consumer and DuckDB in one machine), not by the ledger alone."
                if b.median < GOAL_RATE
                else ""
            )
        ),
        details={"messages_per_round": len(rows)},
    )


def _kafka(spec, max_messages: int, max_seconds: float):
    return spec.source.kafka.model_copy(
        update={"max_messages": max_messages, "max_seconds": max_seconds}
    )


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


@figure("stream_freshness", "(15b) Freshness: produce -> validated, sensor's default interval")
def stream_freshness(bench: Bench) -> Figure:
    from ml_assets.definitions import build_defs

    seconds, rate = (20.0, 20.0) if bench.quick else (60.0, 50.0)
    medians, p95s, counts = [], [], []
    for r in range(bench.repeats):
        scratch = bench.scratch("stream_freshness")
        cluster = MockCluster()
        spec = stream_spec(cluster.bootstrap_servers, scratch, name="flights_fresh")
        interval = spec.source.kafka.interval_seconds
        warehouse = scratch / "warehouse.duckdb"
        defs = build_defs([spec], str(warehouse))
        wanted = int(seconds * rate)  # about 900 flights a day: enough days for the replay
        rows = flights_rows(dt.date(2013, 3, 4), -(-wanted // 800))[:wanted]
        published = Published()
        publish(cluster.bootstrap_servers, [message(row) for row in rows], rate, published)
        seen: dict[bytes, float] = {}
        stop = time.monotonic() + seconds + 60
        with dg.DagsterInstance.ephemeral() as instance:
            driver = Driver(defs, instance, spec)
            while time.monotonic() < stop and len(seen) < len(rows):
                started = time.monotonic()
                driver.tick()
                now = time.monotonic()
                for key in _validated_keys(warehouse, spec.name):
                    seen.setdefault(key, now)
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
        del cluster
        lags = [seen[k] - published.at[k] for k in seen if k in published.at]
        medians.append(statistics.median(lags))
        p95s.append(_p95(lags))
        counts.append(len(lags))
        bench.log(
            f"    repeat {r}: {len(lags)} of {len(rows)} messages, median {medians[-1]:.2f} s, p95 {p95s[-1]:.2f} s"
        )
    ours = Measure(
        "produce -> validated (median per repeat)",
        medians,
        extra={
            "p95_runs": [round(p, 3) for p in p95s],
            "p95_median": round(statistics.median(p95s), 3),
        },
    )
    return Figure(
        ours=ours,
        baseline=None,
        unit="s",
        goal="reported (median and p95)",
        meets_goal=None,
        notes=(
            f"{rate:g} msg/s for {seconds:g} s per repeat ({counts[0]:,} messages); the stream sensor evaluated every "
            f"{interval} s (its default) through Dagster, each requested raw -> validated run "
            f"executed in process; p95 (median over repeats) {statistics.median(p95s):.2f} s. "
            "A message is seen in validated when the run that wrote it has finished."
        ),
        details={"messages": counts, "rate_per_s": rate, "seconds": seconds, "quiet": bool(QUIET)},
    )


def _validated_keys(warehouse: Path, schema: str) -> list[bytes]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        try:
            rows = conn.execute(
                f"""SELECT s._key FROM "{schema}".validated v JOIN "{schema}".stream_rows s
                    ON v._source_row = s._offset
                   AND v._source_checksum = 'kafka:' || s._topic || ':' || s._partition"""
            ).fetchall()
        except duckdb.CatalogException:
            return []
    return [k.encode() for (k,) in rows if k is not None]
