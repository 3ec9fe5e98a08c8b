"""Declared windows as differences of running sums: the plan the features layer runs.

A frame aggregate over event times (`RANGE BETWEEN ... PRECEDING`) costs DuckDB a segment tree
per window over every row of the entity; a count or sum over [t - length, t - end] is also
`running(<= t - end) - running(< t - length)`, where `running` is a cumulative sum per entity over
its distinct times. Those are one GROUP BY and one cumulative window over far fewer rows, and
each row then finds both ends with an ASOF join. On flights at 10x scale the eight label
rates took 103 s this way against 287 s as RANGE frames (one run each, side by side, on a loaded
2-core machine), with the values of `declared.py`'s frames:

- counts are exact; sums of integer-valued doubles (0/1 labels, delays in minutes) are exact
  below 2^53; other sums differ from a frame's by about 1e-16 x (rows of the entity in the
  build's range / rows in the frame) relative, far inside the 1e-9 the parity check allows;
- a frame that ends at the row's own time excludes the row itself (its value is subtracted), as
  `EXCLUDE CURRENT ROW` does; an empty frame's sum or mean is NULL, its count 0;
- entity keys match with IS NOT DISTINCT FROM, so NULL is one entity, as in PARTITION BY.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ml_assets.core.spec import DatasetSpec, FeatureColumn, WindowSpec
from ml_assets.core.sql import ident

LABEL_END = "to_days(CAST($label_delay_days AS INTEGER))"


def interval(length: dt.timedelta) -> str:
    if length.seconds:
        return f"INTERVAL {int(length.total_seconds() // 3600)} HOURS"
    return f"INTERVAL {length.days} DAYS"


@dataclass(frozen=True)
class Series:
    """One running sum or count: what it accumulates, in SQL over the grouped rows."""

    name: str
    per_time: str  # aggregate per (entity, time)
    running: str  # over the per-time rows, cumulative


class Entity:
    """The running sums of one entity key set over one stream of (time, values) rows."""

    def __init__(self, prefix: str, by: tuple[str, ...]) -> None:
        self.prefix, self.by = prefix, by
        self.series: dict[str, Series] = {}
        self.bounds: dict[str, str] = {}  # ASOF alias -> the probe time expression it matches

    @property
    def keys(self) -> list[str]:
        return [f"{self.prefix}_b{i}" for i in range(len(self.by))]

    def add(self, name: str, per_time: str, running: str = "sum") -> str:
        column = f"{self.prefix}_{name}"
        self.series.setdefault(name, Series(column, per_time, running))
        return column

    def upto(self, probe: str, strict: bool = False) -> str:
        """The ASOF alias whose running values cover times <= probe (< probe when strict)."""
        bound = f"{probe} {'>' if strict else '>='}"
        for alias, existing in self.bounds.items():
            if existing == bound:
                return alias
        alias = f"{self.prefix}_j{len(self.bounds)}"
        self.bounds[alias] = bound
        return alias

    def ctes(self, source: str, time: str, where: str = "") -> list[str]:
        """The per-time aggregates and their running values, keys renamed to avoid clashes."""
        keys = ", ".join(f"{ident(k)} AS {b}" for k, b in zip(self.by, self.keys, strict=True))
        per_time = ",\n        ".join(f"{s.per_time} AS {s.name}" for s in self.series.values())
        group = ", ".join(str(i + 1) for i in range(len(self.by) + 1))
        running = ",\n        ".join(
            f"{s.running}({s.name}) OVER _w AS {s.name}" for s in self.series.values()
        )
        partition = ", ".join(self.keys)
        return [
            f"""{self.prefix}_at AS (
    SELECT {keys}, {time} AS {self.prefix}_t,
        {per_time}
    FROM {source}{where}
    GROUP BY {group}
)""",
            f"""{self.prefix} AS (
    SELECT {partition}, {self.prefix}_t,
        {running}
    FROM {self.prefix}_at
    WINDOW _w AS (PARTITION BY {partition} ORDER BY {self.prefix}_t ROWS UNBOUNDED PRECEDING)
)""",
        ]

    def joins(self, row: str) -> str:
        """ASOF joins of the probing rows (alias `row`) to the running values at each bound."""
        out = []
        for alias, bound in self.bounds.items():
            match = " AND ".join(
                f"{row}.{ident(k)} IS NOT DISTINCT FROM {alias}.{b}"
                for k, b in zip(self.by, self.keys, strict=True)
            )
            out.append(
                f"\nASOF LEFT JOIN {self.prefix} {alias} ON {match} "
                f"AND {bound} {alias}.{self.prefix}_t"
            )
        return "".join(out)


def between(hi: str, lo: str, column: str) -> str:
    """A running value's change between two bounds (a bound before any row counts as 0)."""
    return f"(coalesce({hi}.{column}, 0) - coalesce({lo}.{column}, 0))"


def frame_value(agg: str, count: str, total: str) -> str:
    """count / sum / mean of a frame from its count and sum, NULL where SQL's would be."""
    if agg == "count":
        return f"CAST({count} AS BIGINT)"
    if agg == "sum":
        return f"CASE WHEN {count} > 0 THEN {total} END"
    return f"CASE WHEN {count} > 0 THEN {total} / {count} END"


def label_frames_supported(spec: DatasetSpec) -> bool:
    """Label frames that end before the row's own time; with no delay the audit column (the
    latest labelled event *other than the row*) needs the row's peers, which running values
    do not keep, so those specs keep `declared.py`'s frames."""
    return spec.label.delay_days > 0


def row_windows(
    spec: DatasetSpec, declared: dict[str, FeatureColumn]
) -> tuple[list[str], list[str], dict[str, str], str | None]:
    """CTEs, their tables `_f<e>` to join on `_key` (one per entity key set: its window
    features and `_audit`), each feature's column in them by name, and the audit expression.

    Each entity probes its running values with its own narrow rows and the results join on
    `_key`: chaining every entity's ASOF joins on one wide probe was slower than RANGE frames.
    """
    entities: dict[tuple[str, ...], Entity] = {}
    selects: dict[tuple[str, ...], list[str]] = {}
    columns: dict[str, str] = {}
    widest: dict[tuple[str, ...], WindowSpec] = {}
    for name, feature in declared.items():
        window = feature.window
        if window is None:
            continue
        by = tuple(window.by)
        entity = entities.setdefault(by, Entity(f"_e{len(entities)}", by))
        lo = entity.upto(f"v._event_time - {interval(window.length)}", strict=True)
        if window.of == "label":
            hi = entity.upto(f"v._event_time - {LABEL_END}")
            count = between(hi, lo, entity.add("n_label", "count(_label)"))
            total = between(hi, lo, entity.add("s_label", "sum(CAST(_label AS DOUBLE))"))
            if by not in widest or window.length > widest[by].length:
                widest[by] = window
        else:
            # Past rows up to the row's own time, the row itself excluded.
            hi = entity.upto("v._event_time")
            if window.of == "*":
                own_count, own_value = "1", "0"
                count_sql, sum_sql, tag = "count(*)", "count(*)", "star"
            else:
                column = f"v.{ident(window.of)}"
                own_count = f"CAST({column} IS NOT NULL AS INTEGER)"
                own_value = f"coalesce(CAST({column} AS DOUBLE), 0)"
                count_sql = f"count({ident(window.of)})"
                sum_sql = f"sum(CAST({ident(window.of)} AS DOUBLE))"
                tag = f"c{list(spec.contract.columns).index(window.of)}"
            count = f"({between(hi, lo, entity.add('n_' + tag, count_sql))} - {own_count})"
            total = f"({between(hi, lo, entity.add('s_' + tag, sum_sql))} - {own_value})"
        selects.setdefault(by, []).append(
            f"{frame_value(window.agg, count, total)} AS {ident(name)}"
        )
        columns[name] = f"_f{entity.prefix[2:]}.{ident(name)}"
    audits = []
    for by, window in widest.items():
        entity = entities[by]
        hi = entity.upto(f"v._event_time - {LABEL_END}")
        lo = entity.upto(f"v._event_time - {interval(window.length)}", strict=True)
        count = between(hi, lo, entity.add("n_label", "count(_label)"))
        latest = entity.add(
            "m_label", "max(_event_time) FILTER (WHERE _label IS NOT NULL)", running="max"
        )
        selects[by].append(f"CASE WHEN {count} > 0 THEN {hi}.{latest} END AS _audit")
        audits.append(f"_f{entity.prefix[2:]}._audit")
    audit = None
    if audits:
        audit = audits[0] if len(audits) == 1 else f"greatest({', '.join(audits)})"
    ctes, tables = [], []
    for by, entity in entities.items():
        tables.append(f"_f{entity.prefix[2:]}")
        ctes += entity.ctes("{validated}", "_event_time")
        body = ",\n        ".join(selects[by])
        ctes.append(f"""_f{entity.prefix[2:]} AS (
    SELECT v._key,
        {body}
    FROM {{validated}} v{entity.joins("v")}
    WHERE v._partition_date BETWEEN $start AND $end
)""")
    return ctes, tables, columns, audit


def known_at_sql(spec: DatasetSpec, group: int, features: dict[str, FeatureColumn]) -> str:
    """The CTEs of one (keys, known_at) group: `_k<group>` with `_key`, its features and
    `_known_<group>`, the latest arrival any of its windows counted.

    Values arrive at their row's known time (never before just after the row's own event, so a
    row never reads itself); a window of length L holds those that arrived in [t - L, t] and whose
    delay fits `lookback_days - L`, so a day's features do not depend on how much history its
    build read (declared.py).
    """
    first = next(iter(features.values())).window
    by = tuple(first.by)
    lookback = dt.timedelta(days=spec.features.lookback_days)
    longest = max(f.window.length for f in features.values())
    entity = Entity(f"_k{group}e", by)
    hi = entity.upto("v._event_time")
    values, audits = [], []
    for name, feature in features.items():
        window = feature.window
        fits = f"_lag <= {interval(lookback - window.length)}"
        tag = f"{list(spec.contract.columns).index(window.of)}_{int(window.length.total_seconds())}"
        lo = entity.upto(f"v._event_time - {interval(window.length)}", strict=True)
        of = ident(window.of)
        count = between(hi, lo, entity.add(f"n{tag}", f"count({of}) FILTER (WHERE {fits})"))
        total = between(
            hi, lo, entity.add(f"s{tag}", f"sum(CAST({of} AS DOUBLE)) FILTER (WHERE {fits})")
        )
        values.append(f"{frame_value(window.agg, count, total)} AS {ident(name)}")
        latest = entity.add(
            f"m{int(window.length.total_seconds())}",
            f"max(_known) FILTER (WHERE {fits})",
            running="max",
        )
        audit = (
            f"CASE WHEN {hi}.{latest} >= v._event_time - {interval(window.length)} "
            f"THEN {hi}.{latest} END"
        )
        if audit not in audits:
            audits.append(audit)
    arrivals = f"""(SELECT *, _known - _event_time AS _lag
     FROM (SELECT *, CASE WHEN ({first.known_at}) IS NOT NULL
                          THEN greatest(({first.known_at}), _event_time + INTERVAL 1 MICROSECOND)
                     END AS _known
           FROM {{validated}}))"""
    # An arrival before the run's first day minus the longest window is in no frame.
    where = f"\n    WHERE _known >= CAST($start AS TIMESTAMP) - {interval(longest)}"
    ctes = entity.ctes(arrivals, "_known", where)
    stamp = audits[0] if len(audits) == 1 else f"greatest({', '.join(audits)})"
    body = ",\n        ".join([*values, f"{stamp} AS _known_{group}"])
    ctes.append(f"""_k{group} AS (
    SELECT v._key,
        {body}
    FROM {{validated}} v{entity.joins("v")}
    WHERE v._partition_date BETWEEN $start AND $end
)""")
    return ",\n".join(ctes)
