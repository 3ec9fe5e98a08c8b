"""A dataset's Kafka source as the ledger sees it: where its messages go and how they are placed."""

from __future__ import annotations

from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.ingest.files import placement_bounds
from ml_assets.streaming.ledger import StreamTarget


def stream_target(spec: DatasetSpec) -> StreamTarget:
    """The ledger target of a dataset whose source is `kafka` (rows placed like files' rows:
    in the spec's zone, inside the partitions). Built per tick: an open-ended spec's last day
    moves with the date."""
    kafka = spec.source.kafka
    if kafka is None:
        raise ValueError(f"{spec.name}: the source is files, not kafka")
    first, last = placement_bounds(spec)
    return StreamTarget(
        schema=spec.name,
        columns=tuple(spec.columns),
        event_time_field=spec.kafka_event_time_field,
        timezone=spec.event_time.timezone,
        key_column=kafka.key,
        first_day=first,
        last_day=last,
    )
