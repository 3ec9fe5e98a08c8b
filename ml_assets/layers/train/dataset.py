"""The training set: a window of labelled feature rows, split by time, with a content hash.

Splits are by day, never by random row: validation and test are the newest days, so every
metric measures the model on days after the ones it learned from, as it will be used.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ml_assets.core.faults import fault_point
from ml_assets.core.spec import DatasetSpec, SpecError, TrainingSection
from ml_assets.core.sql import ident, render, table_exists, transaction

SQL = Path(__file__).parent / "sql"
SPLITS = ("train", "validation", "test")

# Which split a features row falls in, from the window bounds bound as parameters.
SPLIT_CASE = (
    "CASE WHEN _partition_date > $validation_end THEN 'test' "
    "WHEN _partition_date > $train_end THEN 'validation' ELSE 'train' END"
)


@dataclass(frozen=True)
class Window:
    """Calendar days of a training set: train is [start, train_end], validation the days up to
    `validation_end`, test the days up to `end` (= as_of), all inclusive."""

    start: dt.date
    train_end: dt.date
    validation_end: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> dict[str, tuple[dt.date, dt.date]]:
        one = dt.timedelta(days=1)
        return {
            "train": (self.start, self.train_end),
            "validation": (self.train_end + one, self.validation_end),
            "test": (self.validation_end + one, self.end),
        }

    def params(self) -> dict[str, dt.date]:
        return {
            "start": self.start,
            "train_end": self.train_end,
            "validation_end": self.validation_end,
            "end": self.end,
        }


def plan_window(as_of: dt.date, training: TrainingSection, spec: DatasetSpec) -> Window:
    """The `window_days` days ending at `as_of`: newest `test_days` test, the
    `validation_days` before them validation, the rest train."""
    held_out = training.split.validation_days + training.split.test_days
    if training.window_days <= held_out:
        raise SpecError(
            f"{spec.path}: field 'training.window_days': {training.window_days} leaves no training "
            f"days after {training.split.validation_days} validation and "
            f"{training.split.test_days} test days"
        )
    day = dt.timedelta(days=1)
    return Window(
        start=as_of - (training.window_days - 1) * day,
        train_end=as_of - held_out * day,
        validation_end=as_of - training.split.test_days * day,
        end=as_of,
    )


@dataclass(frozen=True)
class SplitStats:
    split: str
    feature_rows: int
    null_label_rows: int
    rows: int
    label_mean: float | None
    days: int
    first_day: dt.date | None
    last_day: dt.date | None


@dataclass(frozen=True)
class TrainingSetInfo:
    """What downstream steps need to know about a materialized training set."""

    dataset: str
    table: str
    task: str
    as_of: dt.date
    as_of_rule: str
    window: Window
    data_version: str
    splits: tuple[SplitStats, ...]

    def rows(self, split: str) -> int:
        return next(s.rows for s in self.splits if s.split == split)

    @property
    def excluded_null_label_rows(self) -> int:
        return sum(s.null_label_rows for s in self.splits)


def require_features(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """The features table exists and has every column the model needs."""
    if not table_exists(conn, spec.name, "features"):
        raise ValueError(
            f"table {spec.name}.features does not exist: materialize {spec.name}/features first"
        )
    have = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = 'features'",
            [spec.name],
        ).fetchall()
    }
    needed = ["_key", "_event_time", "_partition_date", "_label", "_label_known_at"]
    missing = [c for c in [*needed, *spec.features.columns] if c not in have]
    if missing:
        raise ValueError(f"table {spec.name}.features is missing columns {missing}")


def resolve_as_of(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, requested: str | None, now: dt.datetime
) -> tuple[dt.date, str]:
    """The window's last day and the rule that chose it.

    Default: the newest features day whose labels are all known at the data frontier (see
    sql/labelled_day.sql). A requested day must not be newer than that: its labels would be
    missing or not yet final.
    """
    labelled, newest, frontier = conn.execute(
        render(SQL / "labelled_day.sql", features=spec.names.table("features")), {"now": now}
    ).fetchone()
    if newest is None:
        raise ValueError(f"table {spec.name}.features has no rows")
    if labelled is None:
        raise ValueError(
            f"no day of {spec.name}.features has all its labels known at {frontier} "
            f"(label.delay_days = {spec.label.delay_days})"
        )
    if requested is None:
        return labelled, f"newest day with all labels known at {frontier} (newest day {newest})"
    try:
        as_of = dt.date.fromisoformat(requested)
    except ValueError:
        raise ValueError(f"as_of must be a date like 2013-06-30, got {requested!r}") from None
    if as_of > labelled:
        raise ValueError(
            f"as_of {as_of} is after {labelled}, the newest day of {spec.name}.features whose "
            f"labels are all known at {frontier}"
        )
    return as_of, "requested in run config"


def _feature_columns(spec: DatasetSpec) -> str:
    cols = spec.features.columns
    return ",\n    ".join(
        f"CAST({ident(c)} AS {'VARCHAR' if f.kind == 'categorical' else 'DOUBLE'}) AS {ident(c)}"
        for c, f in cols.items()
    )


def window_stats(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window
) -> tuple[SplitStats, ...]:
    rows = conn.execute(
        render(SQL / "window_stats.sql", features=spec.names.table("features"), split=SPLIT_CASE),
        window.params(),
    ).fetchall()
    found = {r[0]: SplitStats(*r) for r in rows}
    return tuple(found.get(s, SplitStats(s, 0, 0, 0, None, 0, None, None)) for s in SPLITS)


def write_training_set(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, window: Window
) -> tuple[tuple[SplitStats, ...], str]:
    """Replace the training set with the window's labelled rows; return split stats and the
    data version. Fails, leaving the previous table, when a split would have no labelled rows."""
    stats = window_stats(conn, spec, window)
    bounds = window.bounds()
    empty = [f"{s.split} {bounds[s.split][0]}..{bounds[s.split][1]}" for s in stats if not s.rows]
    if empty:
        raise ValueError(
            f"{spec.names.table_name('features')} has no labelled rows for split(s) {', '.join(empty)}; "
            "choose another as_of or materialize those feature partitions"
        )
    with transaction(conn):
        conn.execute(
            render(
                SQL / "training_set.sql",
                training_set=spec.names.table("training_set"),
                features=spec.names.table("features"),
                feature_columns=_feature_columns(spec),
                split=SPLIT_CASE,
            ),
            window.params(),
        )
        fault_point("training_set.written")
    return stats, data_version(conn, spec)


def data_version(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> str:
    """Content hash of the training set table (see sql/data_version.sql), 16 hex digits."""
    (digest,) = conn.execute(
        render(SQL / "data_version.sql", training_set=spec.names.table("training_set"))
    ).fetchone()
    return digest[:16]


def read_training_set(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> pd.DataFrame:
    """The whole training set in time order, for the model boundary (pandas from here on)."""
    return conn.execute(
        f"SELECT * FROM {spec.names.table('training_set')} ORDER BY _partition_date, _event_time, _key"
    ).df()


@dataclass(frozen=True)
class SplitIntegrity:
    split: str
    rows: int
    keys: int
    first_day: dt.date
    last_day: dt.date
    null_labels: int
    label_values: int
    label_min: float | None
    label_max: float | None
    shared_keys: int


def split_integrity(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> list[SplitIntegrity]:
    rows = conn.execute(
        render(SQL / "split_integrity.sql", training_set=spec.names.table("training_set"))
    ).fetchall()
    return [SplitIntegrity(*r) for r in rows]
