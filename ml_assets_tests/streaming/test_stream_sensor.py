"""A Kafka-sourced dataset through real Dagster: the stream sensor's ticks (one of them killed
between the DuckDB commit and Kafka's group commit) append the topic to the ledger exactly once,
and the runs they request put every valid message in raw under its event-time day, late ones
included, with the malformed ones quarantined by reason and offset, accounted for per day."""

import datetime as dt
import json
import signal
import subprocess
import sys

import confluent_kafka as ck
import dagster as dg
import duckdb
import pytest

from ml_assets.core.spec import load_spec, write_spec
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets.layers.ingest.stream import stream_accounts
from ml_assets.streaming.mock import MockCluster

TOPIC = "events"
DAY = dt.date(2013, 6, 1)
LATE = dt.date(2013, 5, 28)
LATER = dt.date(2013, 5, 20)  # a late day that only the second batch touches
MALFORMED = [
    (b"not json {", "not_json"),
    (b"[1, 2]", "not_an_object"),
    (json.dumps({"id": "bad-1", "carrier": "UA"}).encode(), "no_event_time"),
    (json.dumps({"id": "bad-2", "ts": "yesterday"}).encode(), "unparseable_event_time: yesterday"),
    (
        json.dumps({"id": "bad-3", "ts": "2014-03-01T08:00:00"}).encode(),
        "outside_partitions: 2014-03-01 08:00:00 UTC not in [2013-05-01, 2013-06-30]",
    ),
]


def spec_mapping(bootstrap: str) -> dict:
    return {
        "name": "events",
        "source": {
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topic": TOPIC,
                "group": "ml_assets_events",
                "key": "id",
                "max_messages": 40,
                "max_seconds": 3,
            }
        },
        "partitions": {"start": "2013-05-01", "end": "2013-06-30"},
        "event_time": {"column": "ts", "timezone": "UTC"},
        "label": {"kind": "binary", "expression": "dep_delay > 15"},
        "contract": {
            "unique_key": ["id"],
            "columns": {
                "id": {"type": "VARCHAR", "nullable": False},
                "carrier": {"type": "VARCHAR", "nullable": False},
                "dep_delay": {"type": "DOUBLE"},
                "ts": {"type": "TIMESTAMP", "nullable": False},
            },
        },
        "quality": {"max_quarantine_rate": 0.5, "trailing_days": 4},
    }


def event(i: int, day: dt.date) -> tuple[bytes, bytes]:
    """Message i (key `f<i>`: the payload leaves `id` to the key) on `day`; f3's delay is text."""
    when = dt.datetime.combine(day, dt.time(6)) + dt.timedelta(seconds=i)
    payload = {"carrier": "AA", "dep_delay": "x" if i == 3 else i % 40, "ts": when.isoformat()}
    if i % 2:
        payload["ts"] = when.isoformat() + "Z"  # offset-carrying, same instant in UTC
    return f"f{i}".encode(), json.dumps(payload).encode()


def produce(bootstrap: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = ck.Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for key, value in messages:
        producer.produce(TOPIC, value, key=key)
    assert producer.flush(10) == 0


def group_committed(bootstrap: str) -> int:
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "ml_assets_events"})
    parts = c.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
    committed = c.committed([ck.TopicPartition(TOPIC, p) for p in parts], timeout=10)
    c.close()
    return sum(max(tp.offset, 0) for tp in committed)


def tick_and_run(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """One sensor tick, evaluated by Dagster, and the runs it requested; their day ranges."""
    sensor = defs.resolve_sensor_def("events__stream")
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"warehouse": defs.resources["warehouse"]}
    )
    result = sensor.evaluate_tick(context)
    job = defs.resolve_job_def("events__daily_layers")
    ranges = []
    for request in result.run_requests or []:
        run = job.execute_in_process(instance=instance, tags=request.tags)
        assert run.success
        evaluations = run.get_asset_check_evaluations()
        blocking = {c.check_name for c in evaluations if c.severity == dg.AssetCheckSeverity.ERROR}
        assert {"source_rows_accounted", "row_conservation"} <= blocking
        failed = [c.check_name for c in evaluations if not c.passed]
        # freshness judges 2013 against today: a WARN, the one expected failure.
        assert set(failed) <= {"freshness"}
        ranges.append((request.tags[RANGE_START], request.tags[RANGE_END]))
    return ranges


@pytest.mark.slow
def test_the_stream_sensor_lands_every_message_once_in_its_day(tmp_path, instance) -> None:
    cluster = MockCluster()
    boot = cluster.bootstrap_servers
    spec_path = write_spec(tmp_path / "specs" / "events.yaml", spec_mapping(boot))
    warehouse = tmp_path / "warehouse.duckdb"
    defs = build_defs([load_spec(spec_path)], str(warehouse))

    # Batch 1: 90 on DAY, every 15th of them late (LATE), and the malformed ones among them.
    first = [event(i, LATE if i % 15 == 7 else DAY) for i in range(90)]
    for j, bad in enumerate(MALFORMED):
        first.insert(10 + 17 * j, (None, bad[0]))
    produce(boot, first)

    # A tick killed after its DuckDB commit, before Kafka's: Kafka's group offset stays behind
    # the warehouse's, so a consumer trusting Kafka would read that batch again.
    crash = subprocess.run(
        [sys.executable, "-m", "ml_assets_tests.streaming.crash_tick", spec_path, warehouse],
        timeout=60,
    )
    assert crash.returncode == -signal.SIGKILL
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        stored = conn.execute("SELECT sum(next_offset) FROM events.stream_offsets").fetchone()[0]
    assert stored == 40
    assert group_committed(boot) == 0

    ranges = []
    while True:
        got = tick_and_run(defs, instance)
        if not got:
            break
        ranges += got
    # Batch 2, after both days were built: more of DAY, late ones for LATE (built already) and
    # for LATER (not yet); each touched day is rebuilt.
    second = [event(i, LATE if i % 3 == 0 else LATER if i % 3 == 1 else DAY) for i in range(90, 99)]
    produce(boot, second)
    while got := tick_and_run(defs, instance):
        ranges += got
        second_ranges = got

    assert (LATE.isoformat(), LATE.isoformat()) in ranges[:3]
    assert {(LATER.isoformat(), LATER.isoformat()), (DAY.isoformat(), DAY.isoformat())} <= set(
        ranges
    )
    assert (LATE.isoformat(), LATE.isoformat()) in second_ranges

    valid = first + second
    valid = [(k, v) for k, v in valid if k is not None]
    expected_days: dict[dt.date, int] = {}
    for _, v in valid:
        day = dt.date.fromisoformat(json.loads(v)["ts"][:10])
        expected_days[day] = expected_days.get(day, 0) + 1
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM events.raw").fetchall()]
        raw_days = dict(
            conn.execute("SELECT _partition_date, count(*) FROM events.raw GROUP BY 1").fetchall()
        )
        quarantined = conn.execute(
            "SELECT _payload, _reason, _partition, _offset FROM events.stream_quarantine"
        ).fetchall()
        rows_offsets = conn.execute(
            "SELECT _source_checksum, _source_row FROM events.raw"
        ).fetchall()
        stored = dict(
            conn.execute('SELECT "partition", next_offset FROM events.stream_offsets').fetchall()
        )
        conservation = conn.execute(
            """SELECT r.d, r.n, coalesce(v.n, 0), coalesce(q.n, 0) FROM
                 (SELECT _partition_date d, count(*) n FROM events.raw GROUP BY 1) r
               LEFT JOIN (SELECT _partition_date d, count(*) n FROM events.validated GROUP BY 1) v
                 USING (d)
               LEFT JOIN (SELECT _partition_date d, count(*) n FROM events.quarantine GROUP BY 1) q
                 USING (d)"""
        ).fetchall()
        wrong_type = conn.execute(
            "SELECT _reasons, _source_row FROM events.quarantine WHERE id = 'f3'"
        ).fetchall()
        f3_offset = conn.execute(
            "SELECT _offset FROM events.stream_rows WHERE id = 'f3'"
        ).fetchone()[0]

    # Exactly the distinct valid messages, once each (the id came from the message key).
    assert len(ids) == len(valid) == 99
    assert sorted(ids) == sorted(k.decode() for k, _ in valid)
    assert raw_days == expected_days
    assert set(raw_days) == {DAY, LATE, LATER}
    # The malformed ones: quarantined whole with their reasons and offsets, never in raw.
    assert sorted((bytes(p), r) for p, r, _, _ in quarantined) == sorted(MALFORMED)
    # Every offset of every partition is in raw or quarantine, once; stored = the watermarks.
    per_part: dict[int, list[int]] = {}
    for checksum, offset in rows_offsets:
        per_part.setdefault(int(checksum.rsplit(":", 1)[1]), []).append(offset)
    for _, _, part, offset in quarantined:
        per_part.setdefault(part, []).append(offset)
    probe = ck.Consumer({"bootstrap.servers": boot, "group.id": "probe", "log_level": 3})
    for part, offsets in per_part.items():
        high = probe.get_watermark_offsets(ck.TopicPartition(TOPIC, part), 10)[1]
        assert sorted(offsets) == list(range(high)) and stored[part] == high
    probe.close()
    assert sum(len(o) for o in per_part.values()) == len(first) + len(second)
    # Row conservation per day: raw = validated + quarantine (the wrong type is quarantined
    # by validated's contract, with its offset as the source row).
    assert all(n == v + q for _, n, v, q in conservation)
    assert wrong_type == [(["type:dep_delay"], f3_offset)]

    # The accounting is not vacuous: a raw row lost on DAY, or a message in both tables, fails it.
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        spec = load_spec(spec_path)
        accounts, reasons = stream_accounts(conn, spec, DAY, DAY)
        assert all(a.accounted for a in accounts)
        assert reasons == {r.split(":")[0]: 1 for _, r in MALFORMED}
        conn.execute("DELETE FROM events.raw WHERE id = 'f0'")
        accounts, _ = stream_accounts(conn, spec, DAY, DAY)
        assert [(a.missing_from_raw, a.days_off) for a in accounts if not a.accounted] == [
            (1, [DAY.isoformat()])
        ]
        accounts, _ = stream_accounts(conn, spec, LATE, LATE)  # other days are not judged
        assert all(a.accounted for a in accounts)
    del cluster
