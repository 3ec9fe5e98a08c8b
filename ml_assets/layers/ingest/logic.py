"""Pure judgements on the raw layer, testable without Dagster."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import ident, render

SQL = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class CountAnomaly:
    day: dt.date
    rows: int
    trailing_median: float
    ratio: float


def row_count_anomalies(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> tuple[list[CountAnomaly], int]:
    """Days whose count leaves [min_ratio, max_ratio] x the trailing median; also days judged.

    Days with less than half a window of history are not judged: a median of two days says
    little.
    """
    q = spec.quality
    rows = conn.execute(
        render(SQL / "row_count_anomaly.sql", raw_table=spec.names.table("raw")),
        {"start": start, "end": end, "trailing": q.trailing_days, "first": spec.partitions.start},
    ).fetchall()
    anomalies, judged = [], 0
    for day, n, median, history in rows:
        if median is None or history < max(1, q.trailing_days // 2) or median == 0:
            continue
        judged += 1
        ratio = n / median
        if not q.row_count_min_ratio <= ratio <= q.row_count_max_ratio:
            anomalies.append(CountAnomaly(day, n, float(median), round(ratio, 3)))
    return anomalies, judged


def newest_raw_day(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> dt.date | None:
    row = conn.execute(f"SELECT max(_partition_date) FROM {ident(spec.name)}.raw").fetchone()
    return row[0] if row else None


def expected_newest_day(spec: DatasetSpec, today: dt.date) -> dt.date:
    """The newest day that should be in raw by now: yesterday, or the spec's last day."""
    latest = today - dt.timedelta(days=1)
    return min(latest, spec.partitions.end) if spec.partitions.end else latest
