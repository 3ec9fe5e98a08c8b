"""Declared features: the SELECT the layer writes for `column`, `calendar` and `window` features.

Windowed aggregates over an entity's past rows are the part of a feature set a new user is least
able to write correctly (frames that end before the event, label delays, audit columns), so a
spec declares them and this module generates the SQL, with the same contract as a hand-written
file (`query.py`): `_key`, the declared features, and `_max_history_time` wherever a label is read.

Point in time, per window:
  `of: label`   rows whose event lies in [t - length, t - label.delay_days]: a label is known
                `delay_days` after its own event (with no delay, the row's own label is excluded);
  a column, `*` rows whose event lies in [t - length, t], the row itself excluded: a past row's
                own columns are known at its event;
  `known_at`    values that became known in [t - length, t], each at its row's `known_at` (never
                before just after its own event, so a row never reads itself). These are read
                from a stream of the rows' events and their values' arrivals, ordered by time
                (a frame over event times cannot say "known by t"), and reported in the
                `_max_lookup_time` audit column, which the leakage check holds at or before t.
                A value whose delay exceeds `lookback_days - length` is not counted, so a day's
                features do not depend on how much history its build read.
Every aggregate is a count or a sum over such a frame (mean = sum / count), so the online store
can keep the same values as per-entity running sums.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ml_assets.core.spec import DatasetSpec, FeatureColumn, WindowSpec
from ml_assets.core.sql import ident
from ml_assets.layers.features.running import (
    interval,
    known_at_sql,
    label_frames_supported,
    row_windows,
)

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

    def sql(self, name: str, delay_days: int) -> str:
        reach = interval(self.length)
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
    # Lookup features are their own SELECT (lookups.py).
    declared = {c: f for c, f in spec.features.declared.items() if f.lookup is None}
    if not declared:
        return None
    groups: dict[tuple, dict[str, FeatureColumn]] = {}
    for name, feature in declared.items():
        if feature.window is not None and feature.window.known_at is not None:
            group = (tuple(feature.window.by), feature.window.known_at)
            groups.setdefault(group, {})[name] = feature
    known = {name for group in groups.values() for name in group}
    row_sql = _row_sql(spec, {c: f for c, f in declared.items() if c not in known})
    if not groups:
        return row_sql
    ctes = [f"_rows AS (\n{row_sql}\n)"]
    ctes += [known_at_sql(spec, i, features) for i, features in enumerate(groups.values())]
    stamps = [f"_k{i}._known_{i}" for i in range(len(groups))]
    stamp = stamps[0] if len(stamps) == 1 else f"greatest({', '.join(stamps)})"
    columns = ", ".join(f"_k{i}.{ident(c)}" for i, g in enumerate(groups.values()) for c in g)
    joins = "".join(f"\nLEFT JOIN _k{i} USING (_key)" for i in range(len(groups)))
    return (
        f"WITH {', '.join(ctes)}\n"
        f"SELECT _rows.*, {columns}, {stamp} AS _max_lookup_time\nFROM _rows{joins}"
    )


def _row_sql(spec: DatasetSpec, declared: dict[str, FeatureColumn]) -> str:
    """The SELECT of the features read from each row and windows over event times."""
    has_label = any(f.window is not None and f.window.of == "label" for f in declared.values())
    if not has_label or label_frames_supported(spec):
        return _running_row_sql(spec, declared)
    return _frame_row_sql(spec, declared)


def _running_row_sql(spec: DatasetSpec, declared: dict[str, FeatureColumn]) -> str:
    """Windows as differences of running sums (running.py), the row itself as `v`."""
    ctes, tables, windows, audit = row_windows(spec, declared)
    columns = ["v._key"]
    for name, feature in declared.items():
        sql = windows[name] if feature.window is not None else expression(feature, {})
        columns.append(f"{sql} AS {ident(name)}")
    if audit is not None:
        columns.append(f"{audit} AS _max_history_time")
    select = ",\n    ".join(columns)
    head = f"WITH {', '.join(ctes)}\n" if ctes else ""
    joins = "".join(f"\nLEFT JOIN {table} USING (_key)" for table in tables)
    return (
        f"{head}SELECT\n    {select}\nFROM {{validated}} v{joins}\n"
        "WHERE v._partition_date BETWEEN $start AND $end"
    )


def _frame_row_sql(spec: DatasetSpec, declared: dict[str, FeatureColumn]) -> str:
    """The same SELECT with RANGE frames (for label windows with no delay)."""
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
