"""One stream-sensor poll in a child process that SIGKILLs itself at Kafka's group commit, i.e.
after the DuckDB transaction committed and before Kafka heard of it:
`python -m ml_assets_tests.streaming.crash_tick SPEC WAREHOUSE`."""

import os
import signal
import sys
from pathlib import Path

import confluent_kafka as ck

from ml_assets.core.spec import load_spec
from ml_assets.resources.warehouse import Warehouse
from ml_assets.streaming import sensor


class CrashAtCommit:
    def __init__(self, config: dict) -> None:
        self._consumer = ck.Consumer(config)

    def __getattr__(self, name: str):
        return getattr(self._consumer, name)

    def commit(self, **kwargs) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    sensor.new_consumer = CrashAtCommit
    sensor.poll_into_ledger(load_spec(Path(sys.argv[1])), Warehouse(database=sys.argv[2]))
    sys.exit(3)  # not reached: the commit kills the process
