"""What the online path computes, derived from the spec: streams, windows and request fields.

A declared window is an aggregate (count or sum; mean = sum / count) of values in a time frame
of one entity's past rows. Windows that read the same values of the same entity share a
*stream*: per entity, the (time, value) pairs sorted by time, which is all the online store
keeps of the history. A request's window features are then exact aggregates over a slice of
its entity's stream, with the same frame bounds as the offline SQL (`features/declared.py`).
The schema is written into each snapshot's manifest, so a reader computes with the definition
the snapshot was built for, not whatever the spec says when it starts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass

from ml_assets.core.spec import DatasetSpec, WindowSpec

MICROS_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class Stream:
    """One entity's past values, as the snapshot stores them (`streams/<name>.parquet`)."""

    name: str
    by: tuple[str, ...]
    of: str  # `label`, `*` or a contract column
    known_at: str | None  # SQL of when a value becomes known (None: at its event, or label time)


@dataclass(frozen=True)
class WindowFeature:
    """A window feature as bounds on a stream: values with time in [t - reach, t - end_gap],
    whose arrival lag is at most `max_lag` (known_at), excluding the row's own key if asked."""

    name: str
    stream: str
    agg: str  # count | sum | mean
    reach_us: int
    end_gap_us: int
    max_lag_us: int | None
    exclude_self: bool


@dataclass(frozen=True)
class OnlineSchema:
    dataset: str
    streams: tuple[Stream, ...]
    windows: tuple[WindowFeature, ...]
    features: dict[str, str]  # every feature -> numeric | categorical, in spec order
    required: tuple[str, ...]  # request fields that must be present and non-null
    optional: tuple[str, ...]  # request fields that may be absent (NULL)
    label_fields: tuple[str, ...]  # what the label reads: never accepted in a request

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> OnlineSchema:
        return cls(
            dataset=raw["dataset"],
            streams=tuple(
                Stream(s["name"], tuple(s["by"]), s["of"], s["known_at"]) for s in raw["streams"]
            ),
            windows=tuple(WindowFeature(**w) for w in raw["windows"]),
            features=dict(raw["features"]),
            required=tuple(raw["required"]),
            optional=tuple(raw["optional"]),
            label_fields=tuple(raw["label_fields"]),
        )


def _us(length: dt.timedelta) -> int:
    return int(length.total_seconds()) * 1_000_000


def label_fields(spec: DatasetSpec) -> tuple[str, ...]:
    """The contract columns the label is computed from (its column, or those its expression
    names): a request describes an event before its outcome, so it may not carry them."""
    if spec.label.column:
        return (spec.label.column,)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", spec.label.expression or ""))
    return tuple(c for c in spec.contract.columns if c in words)


def window_feature(spec: DatasetSpec, name: str, window: WindowSpec, stream: str) -> WindowFeature:
    """The frame of one declared window, as `declared.py` writes it in SQL."""
    lookback = dt.timedelta(days=spec.features.lookback_days)
    if window.of == "label":
        delay = spec.label.delay_days
        return WindowFeature(
            name,
            stream,
            window.agg,
            _us(window.length),
            delay * 24 * MICROS_PER_HOUR,
            None,
            delay == 0,
        )
    if window.known_at is not None:
        # A value counts once known, and only if known within `lookback - length` of its event.
        return WindowFeature(
            name, stream, window.agg, _us(window.length), 0, _us(lookback - window.length), False
        )
    return WindowFeature(name, stream, window.agg, _us(window.length), 0, None, True)


def online_schema(spec: DatasetSpec) -> OnlineSchema:
    """The online schema of a spec with features."""
    section = spec.features
    streams: dict[tuple, Stream] = {}
    windows = []
    for name, feature in section.declared.items():
        window = feature.window
        if window is None:
            continue
        key = (tuple(window.by), window.of, window.known_at)
        if key not in streams:
            streams[key] = Stream(f"s{len(streams)}", *key)
        windows.append(window_feature(spec, name, window, streams[key].name))
    labels = label_fields(spec)
    fields = [c for c in spec.contract.columns if c not in labels]
    required = [c for c in fields if not spec.contract.columns[c].nullable]
    return OnlineSchema(
        dataset=spec.name,
        streams=tuple(streams.values()),
        windows=tuple(windows),
        features={c: f.kind for c, f in section.columns.items()},
        required=tuple(required),
        optional=tuple(c for c in fields if c not in required),
        label_fields=labels,
    )
