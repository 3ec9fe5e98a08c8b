"""Declared features: the SELECT the layer writes for `column`, `calendar` and `window` features.

Windowed aggregates over an entity's past rows are the part of a feature set a new user is least
able to write correctly (frames that end before the event, label delays, audit columns), so a
spec declares them and this module generates the SQL, with the same contract as a hand-written
file (`query.py`): `_key`, the declared features, and `_max_history_time` wherever a label is read.

Point in time, per window:
  `of: label`   rows whose event lies in [t - length, t - label.delay_days]: a label is known
                `delay_days` after its own event (with no delay, the row's own label is excluded);
  a column, `*` rows whose event lies in [t - length, t], the row itself excluded: a past row's
                own columns are known at its event.
Every aggregate is a count or a sum over such a frame (mean = sum / count), so the online store
can keep the same values as per-entity running sums.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ml_assets.core.spec import DatasetSpec, FeatureColumn, WindowSpec
from ml_assets.core.sql import ident

# Calendar parts with no DuckDB function of their own name.
_CALENDAR = {
    "is_weekend": "CAST(dayofweek({t}) IN (0, 6) AS INTEGER)",
    "monthname": "monthname({t})",
    "dayname": "dayname({t})",
}


@dataclass(frozen=True)
class Frame:
    """One window definition shared by every aggregate over the same rows."""

    by: tuple[str, ...]
    length: dt.timedelta
    of_label: bool

    @property
    def length_hours(self) -> int:
        return int(self.length.total_seconds() // 3600)

    def sql(self, name: str, delay_days: int) -> str:
        if self.length.seconds:
            reach = f"INTERVAL {self.length_hours} HOURS"
        else:
            reach = f"INTERVAL {self.length.days} DAYS"
        if self.of_label:
            end = "to_days(CAST($label_delay_days AS INTEGER)) PRECEDING"
            exclude = " EXCLUDE CURRENT ROW" if delay_days == 0 else ""
        else:
            end, exclude = "CURRENT ROW", " EXCLUDE CURRENT ROW"
        keys = ", ".join(ident(k) for k in self.by)
        return (
            f"{name} AS (PARTITION BY {keys} ORDER BY _event_time "
            f"RANGE BETWEEN {reach} PRECEDING AND {end}{exclude})"
        )


def frame_of(window: WindowSpec) -> Frame:
    return Frame(tuple(window.by), window.length, window.of == "label")


def aggregate(window: WindowSpec) -> str:
    """The window function of one declared aggregate (without its OVER clause)."""
    if window.of == "*":
        return "count(*)"
    value = "_label" if window.of == "label" else ident(window.of)
    if window.agg == "count":
        return f"count({value})"
    fn = "avg" if window.agg == "mean" else "sum"
    return f"{fn}(CAST({value} AS DOUBLE))"


def expression(feature: FeatureColumn, frames: dict[Frame, str]) -> str:
    """The SELECT expression of one declared feature; `frames` names the shared windows."""
    if feature.column is not None:
        return ident(feature.column)
    if feature.calendar is not None:
        template = _CALENDAR.get(feature.calendar, f"{feature.calendar}({{t}})")
        return template.format(t="_event_time")
    window = feature.window
    return f"{aggregate(window)} OVER {frames[frame_of(window)]}"


def declared_sql(spec: DatasetSpec) -> str | None:
    """One SELECT over `{validated}` of every declared feature, or None when there is none."""
    declared = spec.features.declared
    if not declared:
        return None
    frames: dict[Frame, str] = {}
    for feature in declared.values():
        if feature.window is not None:
            frames.setdefault(frame_of(feature.window), f"_w{len(frames)}")
    columns = ["_key", *(f"{expression(f, frames)} AS {ident(c)}" for c, f in declared.items())]
    # A label frame per key set reaching furthest back holds every labelled row any label
    # aggregate of those keys read: its latest event time is the row's audit value.
    widest: dict[tuple[str, ...], Frame] = {}
    for frame in frames:
        if frame.of_label and (frame.by not in widest or frame.length > widest[frame.by].length):
            widest[frame.by] = frame
    if widest:
        latest = [
            f"max(_event_time) FILTER (WHERE _label IS NOT NULL) OVER {frames[f]}"
            for f in widest.values()
        ]
        audit = latest[0] if len(latest) == 1 else f"greatest({', '.join(latest)})"
        columns.append(f"{audit} AS _max_history_time")
    select = ",\n    ".join(columns)
    if not frames:
        return f"SELECT\n    {select}\nFROM {{validated}}\nWHERE _partition_date BETWEEN $start AND $end"
    windows = ",\n    ".join(f.sql(name, spec.label.delay_days) for f, name in frames.items())
    return (
        f"SELECT\n    {select}\nFROM {{validated}}\nWINDOW\n    {windows}\n"
        # History rows were only needed inside the frames; emit the window's own days.
        "QUALIFY _partition_date BETWEEN $start AND $end"
    )


def declared_path(spec: DatasetSpec) -> Path:
    """What error messages call the generated SELECT: the spec field it comes from."""
    return Path(f"{spec.path}#features.columns")
