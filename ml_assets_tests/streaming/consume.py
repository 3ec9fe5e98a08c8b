"""A consumer process for the crash tests: `python -m ml_assets_tests.streaming.consume DB BOOT`.

Consumes bounded batches until the topic stays empty for 2 s. With `CRASH_AT_COMMIT=k` it kills
itself with SIGKILL at the k-th Kafka group commit, i.e. after the DuckDB transaction committed
and before Kafka heard of it: the worst moment for a consumer that trusted Kafka's offsets.
"""

import os
import signal
import sys
import time

import confluent_kafka as ck
import duckdb

from ml_assets.streaming import ledger

TARGET = ledger.StreamTarget("flights", ("id", "carrier", "dep_delay", "ts"), "ts")
TOPIC = "flights"


def main(db: str, bootstrap: str) -> None:
    crash_at = int(os.environ.get("CRASH_AT_COMMIT", "0"))
    consumer = ck.Consumer(ledger.consumer_config(bootstrap, "ml_assets_test"))
    commits = 0
    real_commit = consumer.commit

    class Crashing:
        def __getattr__(self, name):
            return getattr(consumer, name)

        def commit(self, **kwargs):
            nonlocal commits
            commits += 1
            if commits == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_commit(**kwargs)

    conn = duckdb.connect(db)
    ledger.ensure_tables(conn, TARGET)
    ledger.assign_from_store(consumer, conn, TARGET, TOPIC)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 2.0:
        batch = ledger.consume_once(Crashing(), conn, TARGET, max_messages=25, max_seconds=0.3)
        if batch.next_offsets:
            idle_since = time.monotonic()
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
