"""`make stream-demo`: replay bundled flights through a Kafka topic into the graph, and watch.

Starts librdkafka's mock cluster, publishes the flights of one or more days of 2013 as JSON
messages (every field as text, plus `sched_dep_at`, the scheduled departure the flights spec's
event time is) at a configurable rate from a producer thread, and evaluates the dataset's stream
sensor through Dagster every `interval_seconds` (what the daemon does), executing the runs it
requests. Each tick prints what arrived in raw, validated and quarantine. A few malformed and
late messages are mixed in to show the quarantine and the rebuild of an earlier day.

Everything lives under a scratch folder (`data/warehouse/stream_demo/` by default): its own warehouse and
an in-memory Dagster instance; the project's warehouse is not touched. Bounded by `--seconds`.

    python -m ml_assets.streaming.demo --days 1 --rate 100 --seconds 120
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import confluent_kafka as ck
import dagster as dg
import duckdb
from dagster._core.definitions.sensor_definition import SensorExecutionData

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec, load_spec, read_spec_mapping, write_spec
from ml_assets.layers.ingest.files import resolve_source
from ml_assets.streaming.mock import MockCluster

# Runs log at WARNING: the demo's own lines say what happened.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
FLIGHTS_SPEC = Path(__file__).resolve().parent.parent / "defs" / "flights" / "defs.yaml"
TOPIC = "flights"


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def stream_spec(bootstrap: str, folder: Path, name: str = "flights_stream") -> DatasetSpec:
    """The bundled flights spec with a Kafka source instead of files, for the data layers only
    (features need the lookups and the model layers need history, neither of which a topic
    replay brings)."""
    spec = read_spec_mapping(FLIGHTS_SPEC)
    for section in ("lookups", "features", "training", "evaluation", "monitoring"):
        spec.pop(section, None)
    spec["name"] = name
    spec["source"] = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topic": TOPIC,
            "group": f"ml_assets_{name}",
            "event_time_field": "sched_dep_at",
        }
    }
    return load_spec(write_spec(folder / "specs" / f"{name}.yaml", spec))


def flights_rows(first: dt.date, days: int) -> list[dict[str, str | None]]:
    """The flights of [first, first + days) as text, in scheduled departure order, each with
    `sched_dep_at` (the flights spec's event-time expression, as ISO text)."""
    source = load_spec(FLIGHTS_SPEC)
    (csv,) = resolve_source(source.source)
    con = duckdb.connect()
    rel = con.execute(
        """SELECT *, strftime(make_timestamp(year::INT, month::INT, day::INT,
                      sched_dep_time::INT // 100, sched_dep_time::INT % 100, 0),
                      '%Y-%m-%dT%H:%M:%S') AS sched_dep_at
           FROM read_csv($path, all_varchar = true, nullstr = ['NA', ''])
           WHERE make_date(year::INT, month::INT, day::INT) BETWEEN $first AND $last
           ORDER BY sched_dep_at""",
        {
            "path": str(csv.readable_path),
            "first": first,
            "last": first + dt.timedelta(days=days - 1),
        },
    )
    names = [d[0] for d in rel.description]
    rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    con.close()
    return rows


def message(row: dict[str, str | None]) -> tuple[bytes, bytes]:
    key = f"{row['carrier']}{row['flight']}-{row['origin']}-{row['sched_dep_at']}"
    return key.encode(), json.dumps(row).encode()


@dataclass
class Published:
    """What the producer thread sent: the key and the time of each message, once delivered."""

    at: dict[bytes, float] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def publish(
    bootstrap: str, messages: list[tuple[bytes, bytes]], rate: float, out: Published
) -> threading.Thread:
    """Produce `messages` at about `rate` per second in a thread; `out.at` gets each key's
    produce time (monotonic), `out.done` is set at the end."""

    def run() -> None:
        producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3})
        start = time.monotonic()
        for i, (key, value) in enumerate(messages):
            lag = start + i / rate - time.monotonic()
            if lag > 0:
                time.sleep(lag)
            out.at[key] = time.monotonic()
            producer.produce(TOPIC, value, key=key)
            producer.poll(0)
        producer.flush(30)
        out.done.set()

    thread = threading.Thread(target=run, name="replay-producer", daemon=True)
    thread.start()
    return thread


@dataclass
class Driver:
    """Evaluates the stream sensor through Dagster and executes the runs it requests."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    spec: DatasetSpec

    def tick(self) -> tuple[SensorExecutionData, list[dg.RunRequest]]:
        sensor = self.defs.resolve_sensor_def(self.spec.names.sensor("stream"))
        context = dg.build_sensor_context(
            instance=self.instance,
            definitions=self.defs,
            resources={"warehouse": self.defs.resources["warehouse"]},
        )
        result = sensor.evaluate_tick(context)
        job = self.defs.resolve_job_def(self.spec.names.job("daily_layers"))
        requests = list(result.run_requests or [])
        for request in requests:
            run = job.execute_in_process(
                instance=self.instance, tags=request.tags, run_config=QUIET
            )
            if not run.success:
                raise RuntimeError(f"run for {request.tags} failed")
        return result, requests


def counts(warehouse: Path, spec: DatasetSpec) -> dict[str, dict[str, int]]:
    """Rows per day in raw, validated and quarantine, and stream quarantine by reason."""
    out: dict[str, dict[str, int]] = {}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        for table in ("raw", "validated", "quarantine"):
            try:
                rows = conn.execute(
                    f"SELECT _partition_date::VARCHAR, count(*) FROM {spec.name}.{table} "
                    "GROUP BY ALL ORDER BY ALL"
                ).fetchall()
            except duckdb.CatalogException:
                rows = []
            out[table] = dict(rows)
        try:
            rows = conn.execute(
                f"SELECT split_part(_reason, ':', 1), count(*) FROM {spec.name}.stream_quarantine "
                "GROUP BY ALL"
            ).fetchall()
        except duckdb.CatalogException:
            rows = []
        out["stream_quarantine"] = dict(rows)
    return out


def demo_messages(first: dt.date, days: int) -> Iterator[tuple[bytes | None, bytes]]:
    """The replay, with one malformed message in 400 and, from the second hour on, one in 300
    flights of the first day re-sent late (a correction: same key, arriving hours after)."""
    rows = flights_rows(first, days)
    late = [r for r in rows if r["sched_dep_at"] < f"{first}T08"][::20]
    for i, row in enumerate(rows):
        yield message(row)
        if i % 400 == 199:
            yield None, b'{"carrier": "UA", "flight": '  # cut off mid-object
        if i % 300 == 299 and late:
            corrected = dict(late.pop(), dep_delay="0")
            yield message(corrected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-day", type=dt.date.fromisoformat, default=dt.date(2013, 3, 4))
    parser.add_argument("--days", type=int, default=1, help="days of flights to publish (1)")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second (100)")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop after this long")
    parser.add_argument(
        "--folder", type=Path, default=None, help="scratch (data/warehouse/stream_demo)"
    )
    args = parser.parse_args(argv)

    folder = args.folder or settings.warehouse_path().parent / "stream_demo"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    warehouse = folder / "warehouse.duckdb"
    cluster = MockCluster()
    spec = stream_spec(cluster.bootstrap_servers, folder)
    from ml_assets.definitions import build_defs  # loads Dagster definitions: not at import

    defs = build_defs([spec], str(warehouse))
    messages = list(demo_messages(args.first_day, args.days))
    kafka = spec.source.kafka
    say(
        f"mock Kafka at {cluster.bootstrap_servers}; publishing {len(messages):,} messages "
        f"({args.days} day(s) from {args.first_day}) to '{TOPIC}' at {args.rate:g}/s; "
        f"sensor {spec.names.sensor('stream')} every {kafka.interval_seconds} s; "
        f"warehouse {warehouse}"
    )
    published = Published()
    publish(cluster.bootstrap_servers, messages, args.rate, published)
    deadline = time.monotonic() + args.seconds
    with dg.DagsterInstance.ephemeral() as instance:
        driver = Driver(defs, instance, spec)
        n = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            result, requests = driver.tick()
            n += 1
            seen = counts(warehouse, spec)
            days = ", ".join(r.tags["dagster/asset_partition_range_start"] for r in requests)
            skip = f" ({result.skip_message})" if result.skip_message else ""
            say(
                f"[{time.monotonic() - deadline + args.seconds:6.1f}s] tick {n}: "
                f"{len(requests)} run(s){f' for {days}' if days else ''}{skip}; "
                f"raw {sum(seen['raw'].values()):,} {seen['raw']} | "
                f"validated {sum(seen['validated'].values()):,} | "
                f"quarantine {sum(seen['quarantine'].values()):,} | "
                f"stream quarantine {seen['stream_quarantine']}"
            )
            if published.done.is_set() and not requests:
                break
            time.sleep(max(0.0, kafka.interval_seconds - (time.monotonic() - started)))
    final = counts(warehouse, spec)
    valid = sum(1 for k, _ in messages if k is not None)
    say(
        f"published {len(messages):,} ({valid:,} flights); raw {sum(final['raw'].values()):,}, "
        f"validated {sum(final['validated'].values()):,}, quarantine "
        f"{sum(final['quarantine'].values()):,}, stream quarantine {final['stream_quarantine']}"
    )
    del cluster
    return 0


if __name__ == "__main__":
    sys.exit(main())
