"""The request log: every online prediction appended to local JSON-lines files, per event day.

The service must never open the warehouse (DuckDB allows one writing process), so it writes
here and the `online_requests` asset ingests a day into the warehouse later. Records are
buffered and written in batches, each batch to its own file under a temporary name and renamed
when complete (`os.replace`), so a reader listing a day's directory sees whole files only and
never a half-written line. Files are never rewritten: the log is append-only.

A record's day is its row's *event* day (the day the `predictions` layer would partition it
under), not the wall-clock day of the request, so online rows join the labels and the drift
and performance layers by the same day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections import defaultdict
from pathlib import Path

from ml_assets import settings

SUFFIX = ".jsonl"


def log_root(root: Path | None = None) -> Path:
    """`data/online/requests/` (or `root`)."""
    return root or settings.data_dir() / "online" / "requests"


def day_dir(dataset: str, day: dt.date, root: Path | None = None) -> Path:
    """`data/online/requests/<dataset>/<YYYY-MM-DD>/`: one day's files."""
    return log_root(root) / dataset / day.isoformat()


def day_files(dataset: str, day: dt.date, root: Path | None = None) -> list[Path]:
    """The complete files of a day, in write order (temporary files are hidden, dot-named)."""
    folder = day_dir(dataset, day, root)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == SUFFIX and not p.name.startswith("."))


def write_batch(dataset: str, records: list[dict], root: Path | None = None) -> list[Path]:
    """Append `records` (each with a `day`, ISO date) as one new file per day; returns them."""
    by_day: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_day[record["day"]].append(record)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    written = []
    for day, rows in sorted(by_day.items()):
        folder = day_dir(dataset, dt.date.fromisoformat(day), root)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{stamp}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        tmp = folder / f".{name}"
        with tmp.open("w") as out:
            out.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
        os.replace(tmp, folder / name)
        written.append(folder / name)
    return written


class RequestLog:
    """A buffer of records per dataset, written by `flush` (the caller decides when).

    Thread-safe: `append` may be called from any thread; `flush` takes what is buffered.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._buffer: dict[str, list[dict]] = defaultdict(list)

    def append(self, dataset: str, records: list[dict]) -> None:
        with self._lock:
            self._buffer[dataset].extend(records)

    def pending(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._buffer.values())

    def flush(self) -> int:
        """Write everything buffered; returns the number of records written."""
        with self._lock:
            taken, self._buffer = self._buffer, defaultdict(list)
        for dataset, records in taken.items():
            if records:
                write_batch(dataset, records, self.root)
        return sum(len(v) for v in taken.values())
