"""Exactly once from a Kafka topic into the warehouse, against librdkafka's mock cluster (the
Kafka protocol over TCP on 127.0.0.1), with consumer processes killed by SIGKILL."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import confluent_kafka as ck
import duckdb
import pytest

from ml_assets.streaming.mock import MockCluster
from ml_assets_tests.streaming.consume import TOPIC

N_VALID = 400
DAY = dt.datetime(2013, 6, 1, 5, 0)
LATE_DAY = dt.date(2013, 5, 28)
MALFORMED = [
    (b"not json {", "not_json"),
    (b"[1, 2]", "not_an_object"),
    (json.dumps({"id": "bad-1", "carrier": "UA"}).encode(), "no_event_time"),
    (json.dumps({"id": "bad-2", "ts": "yesterday"}).encode(), "unparseable_event_time: yesterday"),
]


def _valid(i: int) -> bytes:
    # Every 40th event is late: produced among today's, but it happened days before.
    when = dt.datetime.combine(LATE_DAY, dt.time(9)) if i % 40 == 7 else DAY
    when += dt.timedelta(seconds=i)
    return json.dumps(
        {"id": f"f{i}", "carrier": "AA", "dep_delay": "x" if i == 3 else i, "ts": when.isoformat()}
    ).encode()


def _produce(bootstrap: str, values: list[bytes]) -> None:
    producer = ck.Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for i, v in enumerate(values):
        producer.produce(TOPIC, v, key=str(i).encode())
    assert producer.flush(10) == 0


def _consumer(db: str, bootstrap: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ml_assets_tests.streaming.consume", db, bootstrap],
        env={**os.environ, **env},
    )


def _group_committed(bootstrap: str) -> int:
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "ml_assets_test", "log_level": 3})
    parts = c.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
    committed = c.committed([ck.TopicPartition(TOPIC, p) for p in parts], timeout=10)
    c.close()
    return sum(max(tp.offset, 0) for tp in committed)


@pytest.mark.slow
def test_crashed_consumers_neither_lose_nor_duplicate(tmp_path):
    cluster = MockCluster()
    boot = cluster.bootstrap_servers
    db = str(tmp_path / "warehouse.duckdb")
    values = [_valid(i) for i in range(N_VALID)]
    for j, (bad, _) in enumerate(MALFORMED):
        values.insert(50 + 60 * j, bad)
    _produce(boot, values[:250])

    # 1. Killed between the DuckDB commit and Kafka's group commit (its 3rd batch).
    assert _consumer(db, boot, CRASH_AT_COMMIT="3").wait(60) == -signal.SIGKILL
    # Kafka's group offset is behind the warehouse now: a consumer trusting it would re-read
    # (duplicate) the batch committed just before the crash.
    with duckdb.connect(db) as conn:
        stored_before = conn.execute(
            "SELECT sum(next_offset) FROM flights.stream_offsets"
        ).fetchone()[0]
    assert _group_committed(boot) < stored_before
    # 2. Killed from outside at an arbitrary moment, while more messages arrive.
    second = _consumer(db, boot)
    _produce(boot, values[250:])
    time.sleep(0.4)
    second.send_signal(signal.SIGKILL)
    assert second.wait(30) == -signal.SIGKILL

    # 3. A consumer that runs to the end resumes from the stored offsets.
    assert _consumer(db, boot).wait(120) == 0

    with duckdb.connect(db, read_only=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM flights.stream_rows").fetchall()]
        assert len(ids) == N_VALID
        assert sorted(ids) == sorted(f"f{i}" for i in range(N_VALID))
        # Wrong types stay text here: validated quarantines them by the contract.
        assert conn.execute(
            "SELECT dep_delay FROM flights.stream_rows WHERE id = 'f3'"
        ).fetchone() == ("x",)
        reasons = conn.execute(
            "SELECT _payload, _reason, _offset FROM flights.stream_quarantine ORDER BY _offset"
        ).fetchall()
        assert sorted((bytes(p), r) for p, r, _ in reasons) == sorted(MALFORMED)
        # Every offset is stored once, in rows or quarantine, and the positions are the ends.
        offsets = conn.execute(
            """SELECT _partition, count(*), count(DISTINCT _offset), max(_offset) FROM (
                 SELECT _partition, _offset FROM flights.stream_rows
                 UNION ALL SELECT _partition, _offset FROM flights.stream_quarantine)
               GROUP BY ALL ORDER BY 1"""
        ).fetchall()
        stored = dict(
            conn.execute('SELECT "partition", next_offset FROM flights.stream_offsets').fetchall()
        )
        days = dict(
            conn.execute(
                "SELECT _partition_date, count(*) FROM flights.stream_rows GROUP BY ALL"
            ).fetchall()
        )
    assert sum(n for _, n, _, _ in offsets) == len(values)
    assert all(n == distinct for _, n, distinct, _ in offsets)
    probe = ck.Consumer({"bootstrap.servers": boot, "group.id": "probe", "log_level": 3})
    for part, _, _, last in offsets:
        assert (
            stored[part]
            == last + 1
            == probe.get_watermark_offsets(ck.TopicPartition(TOPIC, part), 10)[1]
        )
    probe.close()
    late = sum(1 for i in range(N_VALID) if i % 40 == 7)
    assert days == {LATE_DAY: late, DAY.date(): N_VALID - late}
    del cluster
