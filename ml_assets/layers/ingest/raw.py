"""The raw layer: one day of source rows per partition, as read, with the file and checksum.

A partition is rebuilt from every file that holds rows for it: the spec's bundled files plus any
landing files registered earlier (kept as immutable archived copies). Rebuilding therefore gives
the same rows each time, and a landing file dropped twice adds its rows once (files are keyed by
checksum).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import create_tables, ident, render, rewrite_window
from ml_assets.layers.ingest.files import (
    SourceError,
    SourceFile,
    event_time_sql,
    inspect_file,
    reader_sql,
    resolve_source,
    source_file,
    typed_columns_sql,
)

SQL = Path(__file__).parent / "sql"


@dataclass
class RawWrite:
    rows_per_day: dict[dt.date, int]
    files: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.rows_per_day.values())


def ensure_tables(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    create_tables(
        conn,
        SQL / "tables.sql",
        schema=spec.names.schema,
        raw_table=spec.names.table("raw"),
        source_files_table=spec.names.table("source_files"),
        raw_columns=",\n    ".join(f"{ident(c)} VARCHAR" for c in spec.columns),
    )


def _known(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> set[str]:
    return {
        r[0]
        for r in conn.execute(f"SELECT checksum FROM {spec.names.table('source_files')}").fetchall()
    }


def _registered_landing(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, start: dt.date, end: dt.date
) -> list[SourceFile]:
    rows = conn.execute(
        f"""SELECT path, checksum, format, archived_path FROM {spec.names.table("source_files")}
            WHERE kind = 'landing' AND first_date <= $end AND last_date >= $start
            ORDER BY registered_at""",
        {"start": start, "end": end},
    ).fetchall()
    files = []
    for path, checksum, fmt, archived in rows:
        if not Path(archived).is_file():
            raise SourceError(
                f"{path}: its archived copy {archived} is gone; cannot rebuild the partition"
            )
        files.append(SourceFile(Path(path), checksum, fmt, Path(archived), path))
    return files


def landing_file(path: Path) -> SourceFile:
    fmt = "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"
    return source_file(path, fmt)


def _archive(spec: DatasetSpec, file: SourceFile) -> SourceFile:
    target = settings.archive_dir(spec.name) / f"{file.checksum}{file.path.suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file.readable_path, target.with_suffix(".part"))
        target.with_suffix(".part").rename(target)
    return SourceFile(file.path, file.checksum, file.format, target, file.uri)


def write_raw(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    start: dt.date,
    end: dt.date,
    *,
    run_id: str,
    ingested_at: dt.datetime,
    landing: list[Path] = (),
) -> RawWrite:
    """Replace raw partitions [start, end] in one transaction; return rows per day.

    Every file is inspected (and rejected with a clear error) before the transaction opens, so a
    bad file never leaves a half-written window.
    """
    ensure_tables(conn, spec)
    known = _known(conn, spec)
    to_register: list[tuple[str, SourceFile, object]] = []
    bundled = resolve_source(spec.source)
    for f in bundled:
        if f.checksum not in known:
            to_register.append(("bundled", f, inspect_file(f, spec, reject_outside=False)))
    new_landing: list[SourceFile] = []
    for path in landing:
        f = landing_file(Path(path))
        if f.checksum in known or any(f.checksum == g.checksum for g in bundled + new_landing):
            continue  # the same bytes were ingested already: once is enough
        profile = inspect_file(f, spec, spec.source)
        if profile.first_date < start or profile.last_date > end:
            raise SourceError(
                f"{f.path.name}: spans {profile.first_date}..{profile.last_date}, outside this run's "
                f"partitions {start}..{end}"
            )
        archived = _archive(spec, f)
        new_landing.append(archived)
        to_register.append(("landing", archived, profile))

    files = bundled + _registered_landing(conn, spec, start, end) + new_landing
    table = spec.names.table("raw")
    columns = ", ".join(ident(c) for c in spec.columns)
    struct_columns = ", ".join(f"_r.{ident(c)}" for c in spec.columns)
    params = {"start": start, "end": end, "ingested_at": ingested_at, "run_id": run_id}
    with rewrite_window(conn, [table], start, end):
        for f in files:
            sql = render(
                SQL / "raw_insert.sql",
                raw_table=table,
                raw_columns=columns,
                reader=reader_sql(f, spec.source),
                typed_columns=typed_columns_sql(spec, "numbered"),
                event_time=event_time_sql(spec),
                struct_columns=struct_columns,
            )
            conn.execute(
                sql,
                {
                    **params,
                    "path": str(f.readable_path),
                    "source_file": f.name,
                    "checksum": f.checksum,
                },
            )
        for kind, f, profile in to_register:
            conn.execute(
                f"""INSERT INTO {spec.names.table("source_files")} VALUES
                    ($checksum, $path, $archived, $kind, $format, $rows, $first, $last, $extra, $at, $run_id)""",
                {
                    "checksum": f.checksum,
                    "path": f.name,
                    "archived": str(f.readable_path) if kind == "landing" else None,
                    "kind": kind,
                    "format": f.format,
                    "rows": profile.rows,
                    "first": profile.first_date,
                    "last": profile.last_date,
                    "extra": list(profile.extra_columns),
                    "at": ingested_at,
                    "run_id": run_id,
                },
            )
    counts = conn.execute(
        render(SQL / "raw_counts.sql", raw_table=table), {"start": start, "end": end}
    ).fetchall()
    described = [
        {
            "file": f.name,
            "checksum": f.checksum,
            "kind": "landing" if f in new_landing else "existing",
        }
        for f in files
    ]
    return RawWrite(rows_per_day={d: n for d, n in counts}, files=described)
