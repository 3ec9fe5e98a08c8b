"""Events logged inside a block, stored as one batch when it ends.

Dagster stores every event as it is logged and never batches check evaluations, so a range run's
per-day check records (`core.checks.record_days`: one per day and check) cost one storage write
each. Inside `buffered_events`, a storage that honours the buffer (the SQLite event log patched
by `ml_assets.event_log_batches`) keeps this thread's events instead, and the block's end stores
them with one `store_event_batch`: one transaction instead of thousands. Any other storage
ignores the buffer and stores each event as it comes, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster._core.events.log import EventLogEntry

_state = threading.local()
_log = logging.getLogger(__name__)


@contextmanager
def buffered_events(instance: dg.DagsterInstance) -> Iterator[None]:
    """Store the events this thread logs to `instance` inside the block as one batch at its end
    (nested blocks join the outer one). Events are never dropped: a failed batch is stored one
    event at a time, as Dagster does with its own batches."""
    if getattr(_state, "buffer", None) is not None:
        yield
        return
    storage = instance.event_log_storage
    events: list[EventLogEntry] = []
    _state.buffer = (storage, events)
    try:
        yield
    finally:
        _state.buffer = None
        if events:
            _flush(storage, events)


def buffer_for(storage: Any) -> list[EventLogEntry] | None:
    """The open buffer of this thread for `storage`, if any: where its `store_event` puts events."""
    buffer = getattr(_state, "buffer", None)
    return buffer[1] if buffer is not None and buffer[0] is storage else None


def _flush(storage: Any, events: list[EventLogEntry]) -> None:
    try:
        storage.store_event_batch(events)
    except Exception:
        _log.warning("storing %d events as one batch failed; storing them one by one", len(events))
        for event in events:
            storage.store_event(event)
