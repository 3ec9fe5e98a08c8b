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


@dataclass(frozen=True)
class FileAccount:
    """Where one source file's rows are: placed in a day (in raw, or waiting for a day not yet
    written) or rejected with a reason. `rows` is the count made when the file was registered,
    by a plain `count(*)` of the file, so it does not depend on the placement being right."""

    checksum: str
    file: str | None  # None: raw or the ledgers hold rows of a file never registered
    kind: str | None
    rows: int | None
    placed: int
    rejected: int
    in_raw: int
    mismatched: int  # |raw - placed| summed over the days judged
    mismatched_days: list[str]
    reasons: dict[str, int]

    @property
    def unaccounted(self) -> int:
        """Rows of the file neither placed in a day nor rejected (negative: rows invented)."""
        return (self.rows or 0) - self.placed - self.rejected

    @property
    def waiting(self) -> int:
        """Placed rows not in raw yet: their days have not been written (a partial backfill)."""
        return self.placed - self.in_raw

    @property
    def accounted(self) -> bool:
        return self.rows is not None and self.unaccounted == 0 and self.mismatched == 0

    def as_metadata(self) -> dict[str, object]:
        return {
            "file": self.file or f"(unregistered {self.checksum[:12]})",
            "kind": self.kind,
            "rows_in_file": self.rows,
            "in_raw": self.in_raw,
            "waiting_for_partitions": self.waiting,
            "rejected": self.rejected,
            "rejected_by_reason": self.reasons,
            "unaccounted": self.unaccounted,
            "raw_rows_off_on_days_judged": self.mismatched,
            "days_off": self.mismatched_days[:10],
        }


def source_accounts(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date | None,
    end: dt.date | None,
) -> list[FileAccount]:
    """Every source file with a placement ledger, accounted for; raw judged on [start, end].

    Without a window (the check launched on its own) the days judged are those raw holds: a day
    never written cannot be told from a day that lost every row, so it is not judged.
    """
    raw_days_only = start is None or end is None
    params = {
        "start": start or dt.date.min,
        "end": end or dt.date.max,
        "raw_days_only": raw_days_only,
    }
    rows = conn.execute(
        render(
            SQL / "source_accounts.sql",
            raw_table=spec.names.table("raw"),
            source_files_table=spec.names.table("source_files"),
            rejected_table=spec.names.table("rejected_rows"),
            file_days_table=spec.names.table("source_file_days"),
        ),
        params,
    ).fetchall()
    reasons: dict[str, dict[str, int]] = {}
    for checksum, code, n in conn.execute(
        f"""SELECT _source_checksum, split_part(_reason, ':', 1), count(*)
            FROM {spec.names.table("rejected_rows")} GROUP BY ALL ORDER BY ALL"""
    ).fetchall():
        reasons.setdefault(checksum, {})[code] = n
    return [FileAccount(*row, reasons=reasons.get(row[0], {})) for row in rows]
