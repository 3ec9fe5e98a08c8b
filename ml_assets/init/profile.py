"""Profile a user's CSV or Parquet file with DuckDB, exactly as the raw and validated layers read it.

The file is read with the raw layer's own reader (every value as text) and each column is cast
with the validated layer's own casts, so a type proposed here is one the contract will accept
for every row of this file: DuckDB's sniffer proposes, the contract's cast confirms, and a
column that does not cast whole is widened (BIGINT -> DOUBLE -> VARCHAR) rather than trusted.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml_assets.core.spec import IDENT, ColumnContract, CsvOptions, SourceSpec
from ml_assets.core.sql import ident, literal, render
from ml_assets.layers.ingest.files import SourceError, reader_sql, source_file
from ml_assets.layers.validate.contract import typed_expr

SQL = Path(__file__).parent / "sql"
# At most this many distinct values: a column's values are listed (allowed values, slices).
LOW_CARDINALITY = 20
# What the validated layer treats as an offset-carrying timestamp (see validate/contract.py).
OFFSET_PATTERN = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
NUMERIC = {"BIGINT", "DOUBLE"}
TEMPORAL = {"DATE", "TIMESTAMP", "TIMESTAMPTZ"}
# A sniffed type that the contract's cast rejects for some value falls back along this chain.
_WIDER = {"BIGINT": "DOUBLE", "DOUBLE": "VARCHAR", "BOOLEAN": "VARCHAR", "DATE": "TIMESTAMP"}
_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
_INTEGERS |= {f"U{t}" for t in _INTEGERS}


class ProfileError(ValueError):
    """The file cannot be profiled (or would not ingest); the message says why."""


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    type: str  # the contract type every value of the file casts to
    sniffed: str  # what DuckDB's reader proposed
    rows: int
    nulls: int
    distinct: int
    minimum: str | None  # as text; numbers and times parse it
    maximum: str | None
    values: tuple[tuple[str, int], ...] = ()  # (value, rows), when distinct <= LOW_CARDINALITY
    offset_share: float | None = None  # timestamps: share of values carrying a UTC offset
    offsets: tuple[str, ...] = ()
    time_of_day: bool = True  # temporal columns: some value is not at midnight

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def low_cardinality(self) -> bool:
        return 0 < self.distinct <= LOW_CARDINALITY

    @property
    def numeric_range(self) -> tuple[float, float] | None:
        if self.type not in NUMERIC or self.minimum is None or self.maximum is None:
            return None
        return float(self.minimum), float(self.maximum)


@dataclass(frozen=True)
class DailyProfile:
    """Rows and NULLs per event day, for partitions, window sizes and NULL-rate limits."""

    days: tuple[dt.date, ...]
    rows: tuple[int, ...]
    worst_null_rate: dict[str, float] = field(default_factory=dict)

    @property
    def first(self) -> dt.date:
        return self.days[0]

    @property
    def last(self) -> dt.date:
        return self.days[-1]

    @property
    def span_days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def median_rows(self) -> float:
        return statistics.median(self.rows)


@dataclass(frozen=True)
class FileProfile:
    path: Path
    format: str
    source: SourceSpec  # how the raw layer will read it (format and CSV options)
    rows: int
    columns: dict[str, ColumnProfile]
    skipped: dict[str, str]  # columns that cannot be contract columns, and why


def file_format(path: Path) -> str:
    return "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"


def contract_type(sniffed: str) -> str:
    """The contract type for a DuckDB reader type (every contract type is a DuckDB type)."""
    base = sniffed.split("(")[0].upper()
    if base in _INTEGERS:
        return "BIGINT"
    if base in {"DOUBLE", "FLOAT", "REAL", "DECIMAL"}:
        return "DOUBLE"
    if base in {"BOOLEAN", "DATE"}:
        return base
    if base == "TIMESTAMP WITH TIME ZONE":
        return "TIMESTAMPTZ"
    if base.startswith("TIMESTAMP"):
        return "TIMESTAMP"  # TIMESTAMP, TIMESTAMP_NS, _MS, _S
    return "VARCHAR"


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB in UTC, like the landing sensor's file inspection."""
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _sniff_csv(conn: duckdb.DuckDBPyConnection, path: Path) -> CsvOptions:
    try:
        delimiter, header = conn.execute(
            "SELECT Delimiter, HasHeader FROM sniff_csv($path, sample_size = -1)",
            {"path": str(path)},
        ).fetchone()
    except duckdb.Error as exc:
        raise ProfileError(f"{path}: not readable as CSV: {_first_line(exc)}") from None
    return CsvOptions(delimiter=delimiter, header=bool(header))


def _sniffed_types(
    conn: duckdb.DuckDBPyConnection, path: Path, source: SourceSpec
) -> dict[str, str]:
    params: dict[str, object] = {"path": str(path)}
    if source.format == "parquet":
        reader = "SELECT * FROM read_parquet($path)"
    else:
        reader = (
            "SELECT * FROM read_csv($path, header = $header, delim = $delim, nullstr = $nulls, "
            "sample_size = -1)"
        )
        csv = source.csv
        params |= {"header": csv.header, "delim": csv.delimiter, "nulls": csv.null_strings}
    try:
        return {r[0]: r[1] for r in conn.execute(f"DESCRIBE {reader}", params).fetchall()}
    except duckdb.Error as exc:
        raise ProfileError(f"{path}: not readable as {source.format}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _casts_whole(conn: duckdb.DuckDBPyConnection, column: str, type_: str) -> bool:
    """Does every non-NULL value of the column cast to `type_` with the contract's own cast?"""
    expr = typed_expr(column, ColumnContract(type=type_))
    (failures,) = conn.execute(
        f"SELECT count(r.{ident(column)}) - count({expr}) FROM _source AS r"
    ).fetchone()
    return failures == 0


def _verified_type(conn: duckdb.DuckDBPyConnection, column: str, sniffed: str) -> str:
    type_ = contract_type(sniffed)
    while type_ != "VARCHAR" and not _casts_whole(conn, column, type_):
        type_ = _WIDER.get(type_, "VARCHAR")
    return type_


def _column(conn: duckdb.DuckDBPyConnection, name: str, type_: str, sniffed: str) -> ColumnProfile:
    col = ident(name)
    rows, nulls, distinct, lo, hi = conn.execute(
        render(SQL / "column_stats.sql", column=col)
    ).fetchone()
    values: tuple[tuple[str, int], ...] = ()
    if 0 < distinct <= LOW_CARDINALITY:
        found = conn.execute(
            render(SQL / "top_values.sql", column=col), {"limit": LOW_CARDINALITY}
        ).fetchall()
        values = tuple((v, n) for v, n in found)
    share, offsets, time_of_day = None, (), True
    if type_ in {"TIMESTAMP", "TIMESTAMPTZ"}:
        non_null, with_offset, found_offsets = conn.execute(
            render(SQL / "offsets.sql", column=col), {"offset_pattern": OFFSET_PATTERN}
        ).fetchone()
        share = with_offset / non_null if non_null else 0.0
        offsets = tuple(sorted(found_offsets))[:5]
        if type_ == "TIMESTAMPTZ" and with_offset == 0:
            # Offset-free text the sniffer still read as TIMESTAMPTZ: a naive timestamp (the
            # contract would quarantine every row of a TIMESTAMPTZ column as `tz_missing`).
            type_ = "TIMESTAMP"
    if type_ in TEMPORAL:
        (not_midnight,) = conn.execute(render(SQL / "time_of_day.sql", column=col)).fetchone()
        time_of_day = type_ != "DATE" and not_midnight > 0
    return ColumnProfile(
        name, type_, sniffed, rows, nulls, distinct, lo, hi, values, share, offsets, time_of_day
    )


def profile_file(conn: duckdb.DuckDBPyConnection, path: Path) -> FileProfile:
    """Read the file as the raw layer will and profile every column that can be a contract column.

    Leaves two temp tables on `conn` for the later questions (keys, label, days): `_source`, the
    file as text, and `_typed`, its contract columns cast to their proposed types.
    """
    path = path.resolve()
    fmt = file_format(path)
    if not path.is_file():
        raise ProfileError(f"{path}: file not found")
    csv = _sniff_csv(conn, path) if fmt == "csv" else CsvOptions()
    source = SourceSpec(files=[str(path)], format=fmt, csv=csv)
    try:
        file = source_file(path, fmt)
    except SourceError as exc:
        raise ProfileError(str(exc)) from None
    if file.readable_path.stat().st_size == 0:
        raise ProfileError(f"{path}: file is empty")
    sniffed = _sniffed_types(conn, path, source)
    try:
        # The raw layer's reader: what ingestion will read, every value as text.
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE _source AS {reader_sql(file, source)}",
            {"path": str(file.readable_path)},
        )
    except duckdb.Error as exc:
        raise ProfileError(f"{path}: the raw layer could not read it: {_first_line(exc)}") from None
    read = [r[0] for r in conn.execute("DESCRIBE _source").fetchall()]
    skipped = {}
    for name in read:
        if not IDENT.match(name):
            skipped[name] = "not an identifier (letters, digits, '_'): cannot be a contract column"
        elif name.startswith("_"):
            skipped[name] = "starts with '_', reserved for lineage columns (_key, _event_time, ...)"
    usable = [c for c in read if c not in skipped]
    if not usable:
        raise ProfileError(f"{path}: no column can be a contract column ({skipped})")
    types = {c: _verified_type(conn, c, sniffed.get(c, "VARCHAR")) for c in usable}
    typed = ", ".join(
        f"{typed_expr(c, ColumnContract(type=t))} AS {ident(c)}" for c, t in types.items()
    )
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS SELECT {typed} FROM _source AS r")
    columns = {c: _column(conn, c, t, sniffed.get(c, "VARCHAR")) for c, t in types.items()}
    if any(p.type != types[c] for c, p in columns.items()):
        # A naive timestamp the sniffer read as TIMESTAMPTZ: recast with the corrected type.
        typed = ", ".join(
            f"{typed_expr(c, ColumnContract(type=p.type))} AS {ident(c)}"
            for c, p in columns.items()
        )
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS SELECT {typed} FROM _source AS r")
    rows = next(iter(columns.values())).rows
    if rows == 0:
        raise ProfileError(f"{path}: the file has a header but no rows")
    return FileProfile(path, fmt, source, rows, columns, skipped)


def event_time_expression(column: ColumnProfile, timezone: str) -> str:
    """The event time as the raw layer computes it (`layers/ingest/files.py: event_time_sql`):
    offset-carrying values converted to `timezone`, anything else cast to TIMESTAMP."""
    if column.type == "TIMESTAMPTZ":
        return f"timezone({literal(timezone)}, {ident(column.name)})"
    return f"CAST({ident(column.name)} AS TIMESTAMP)"


def daily_profile(
    conn: duckdb.DuckDBPyConnection, profile: FileProfile, time: ColumnProfile, timezone: str
) -> DailyProfile:
    """Rows per event day and each column's worst daily NULL share (the validated layer's
    `null_rates` check and the features' `max_null_rate` compare day by day)."""
    names = list(profile.columns)
    null_counts = ", ".join(f"count(*) - count({ident(c)})" for c in names)
    found = conn.execute(
        render(
            SQL / "daily.sql",
            event_time=event_time_expression(time, timezone),
            null_counts=null_counts,
        )
    ).fetchall()
    found = [r for r in found if r[0] is not None]
    if not found:
        raise ProfileError(f"{profile.path}: no row has an event time in '{time.name}'")
    worst = {c: max(r[2 + i] / r[1] for r in found) for i, c in enumerate(names)}
    return DailyProfile(
        days=tuple(r[0] for r in found), rows=tuple(r[1] for r in found), worst_null_rate=worst
    )


def distinct_keys(conn: duckdb.DuckDBPyConnection, columns: list[str]) -> tuple[int, int, int]:
    """(rows, rows with every key column set, distinct keys among them)."""
    quoted = [ident(c) for c in columns]
    sql = render(
        SQL / "distinct_keys.sql",
        columns=", ".join(quoted),
        all_present=" AND ".join(f"{c} IS NOT NULL" for c in quoted),
    )
    rows, keyed, keys = conn.execute(sql).fetchone()
    return rows, keyed, keys


@dataclass(frozen=True)
class LabelStats:
    rows: int
    labelled: int
    mean: float | None
    sd: float | None
    minimum: float | None
    maximum: float | None
    distinct: int


def label_stats(conn: duckdb.DuckDBPyConnection, label_sql: str) -> LabelStats:
    """The label expression evaluated on every row, as `validated` will (`CAST(... AS DOUBLE)`)."""
    try:
        row = conn.execute(render(SQL / "label_stats.sql", label=label_sql)).fetchone()
    except duckdb.Error as exc:
        raise ProfileError(f"label {label_sql}: {_first_line(exc)}") from None
    return LabelStats(*row)
