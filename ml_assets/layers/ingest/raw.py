"""The raw layer: one day of source rows per partition, as read, with the file and checksum.

A partition is rebuilt from every file that holds rows for it: the spec's bundled files plus any
landing files registered earlier (kept as immutable archived copies). Rebuilding therefore gives
the same rows each time, and a landing file dropped twice adds its rows once (files are keyed by
checksum).

No source row is lost. A row whose event time is missing, unparseable or on a day outside the
partitions goes to `<ds>.rejected_rows`, every column as read plus `_source_file`,
`_source_checksum`, `_source_row` and `_reason`, rather than into quarantine under the nearest
partition: such a row has no day (or none that exists), so filing it under the first or last day
would charge that day's quarantine rate and row conservation with rows that never happened on it,
and a row with no time has no nearest day at all. Rejections belong to a file, not a day, so they
are rewritten per file: each run that reads a file replaces that file's rejected rows and its
per-day row counts (`<ds>.source_file_days`) inside the same transaction as the raw window, so a
rerun never duplicates them and a spec change (a later `partitions.end`) re-places them. The
`source_rows_accounted` check then proves, per file, rows in the file = rows placed in a day +
rows rejected with a reason, and that each day of the window holds exactly its files' rows.

A dataset whose source is a Kafka topic rebuilds its days from the stream ledger instead
(`stream.py`); its quarantined messages are in `<ds>.stream_quarantine`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ml_assets import settings
from ml_assets.core.faults import fault_point
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import create_tables, ident, render, rewrite_window
from ml_assets.layers.ingest.files import (
    FileProfile,
    SourceError,
    SourceFile,
    inspect_file,
    last_partition_day,
    placement_params,
    reader_sql,
    resolve_source,
    sha256,
    source_file,
    sourced_sql,
)
from ml_assets.layers.ingest.stream import write_stream_raw

SQL = Path(__file__).parent / "sql"


@dataclass
class RawWrite:
    rows_per_day: dict[dt.date, int]
    files: list[dict] = field(default_factory=list)
    # Rows of the files read that fit no partition, per reason code (`outside_partitions`, ...).
    rejected: dict[str, int] = field(default_factory=dict)

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
        rejected_table=spec.names.table("rejected_rows"),
        file_days_table=spec.names.table("source_file_days"),
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


def landing_file_format(path: Path) -> str:
    return "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"


def landing_file(path: Path) -> SourceFile:
    return source_file(path, landing_file_format(path))


def _stat(path: Path, when: str) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceError(
            f"{path}: landing file disappeared {when}; nothing of it was ingested"
        ) from None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _snapshot(spec: DatasetSpec, path: Path) -> tuple[SourceFile, bool]:
    """Copy a landing file once into the archive and checksum the copy: its checksum, its
    profile and its rows are then all read from that one version, whatever happens to the
    original. A file that disappears, or changes (size, mtime or inode) while it is copied, is
    refused with an error naming it. Returns the archived file and whether this call created
    its archived copy."""
    before = _stat(path, "before it could be read")
    folder = settings.archive_dir(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f".{path.name}.{os.getpid()}.part"
    try:
        shutil.copyfile(path, staged)
        if _stat(path, "while it was being read") != before:
            raise SourceError(
                f"{path}: landing file changed while it was being read; nothing of it was "
                "ingested (drop it again once it is complete)"
            )
    except FileNotFoundError:
        staged.unlink(missing_ok=True)
        raise SourceError(
            f"{path}: landing file disappeared while it was being read; nothing of it was ingested"
        ) from None
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    checksum = sha256(staged)
    target = folder / f"{checksum}{path.suffix}"
    created = not target.exists()
    if created:
        staged.rename(target)
    else:
        staged.unlink()
    fmt = landing_file_format(path)
    return SourceFile(path, checksum, fmt, target, str(path)), created


def _check_landing_window(
    file: SourceFile, profile: FileProfile, spec: DatasetSpec, start: dt.date, end: dt.date
) -> None:
    """A landing file's placed days that exist as partitions must lie in this run's window:
    a day left out would get its rows only whenever someone rebuilt it. Days after the newest
    partition wait for it (the daily run of that day reads every file registered for it)."""
    newest = last_partition_day(spec)
    last = min(profile.placed_last, newest) if newest else profile.placed_last
    if profile.placed_first < start or last > end:
        raise SourceError(
            f"{file.path.name}: spans {profile.placed_first}..{profile.placed_last}, outside this "
            f"run's partitions {start}..{end}"
        )


def _retired_bundled(
    conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, bundled: list[SourceFile]
) -> list[str]:
    """Bundled files registered earlier that the spec no longer names: each rewrite drops their
    rows, so their placement ledger goes too (else the check would miss rows no longer wanted)."""
    current = {f.checksum for f in bundled}
    rows = conn.execute(
        f"SELECT checksum FROM {spec.names.table('source_files')} WHERE kind = 'bundled'"
    ).fetchall()
    return [c for (c,) in rows if c not in current]


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
    bad file never leaves a half-written window. In the same transaction each file read gets its
    rejected rows and per-day counts rewritten (see the module docstring).
    """
    ensure_tables(conn, spec)
    if spec.source.kafka is not None:
        if landing:
            raise SourceError(
                f"{spec.name}: its source is a Kafka topic; landing files are not read"
            )
        rows_per_day, files, quarantined = write_stream_raw(conn, spec, start, end, run_id=run_id)
        return RawWrite(rows_per_day=rows_per_day, files=files, rejected=quarantined)
    known = _known(conn, spec)
    to_register: list[tuple[str, SourceFile, FileProfile]] = []
    bundled = resolve_source(spec.source)
    for f in bundled:
        if f.checksum not in known:
            to_register.append(("bundled", f, inspect_file(f, spec, require_placed=False)))
    new_landing: list[SourceFile] = []
    for path in landing:
        # Read once: a file rewritten after its checksum was taken would otherwise be
        # registered under one version's checksum with another version's rows.
        f, created = _snapshot(spec, Path(path))
        if f.checksum in known or any(f.checksum == g.checksum for g in bundled + new_landing):
            if created:  # the same bytes as a bundled file: no archived copy needed
                f.readable_path.unlink(missing_ok=True)
            continue  # the same bytes were ingested already: once is enough
        try:
            profile = inspect_file(f, spec, spec.source)
            _check_landing_window(f, profile, spec, start, end)
        except BaseException:
            if created:  # a refused file leaves no archived copy behind
                f.readable_path.unlink(missing_ok=True)
            raise
        new_landing.append(f)
        to_register.append(("landing", f, profile))

    files = bundled + _registered_landing(conn, spec, start, end) + new_landing
    table = spec.names.table("raw")
    columns = ", ".join(ident(c) for c in spec.columns)
    stamp = {"ingested_at": ingested_at, "run_id": run_id}
    placement = placement_params(spec)  # once: an open-ended spec's bounds move with the date
    retired = _retired_bundled(conn, spec, bundled)
    with rewrite_window(conn, [table], start, end):
        if retired:
            conn.execute(
                f"DELETE FROM {spec.names.table('rejected_rows')} WHERE list_contains($c, _source_checksum)",
                {"c": retired},
            )
            conn.execute(
                f"DELETE FROM {spec.names.table('source_file_days')} WHERE list_contains($c, checksum)",
                {"c": retired},
            )
        for f in files:
            _write_file(conn, spec, f, (start, end), columns, stamp, placement)
            fault_point("raw.file_written")
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
    rejected = conn.execute(
        f"""SELECT split_part(_reason, ':', 1), count(*) FROM {spec.names.table("rejected_rows")}
            WHERE list_contains($c, _source_checksum) GROUP BY ALL ORDER BY ALL""",
        {"c": [f.checksum for f in files]},
    ).fetchall()
    described = [
        {
            "file": f.name,
            "checksum": f.checksum,
            "kind": "landing" if f in new_landing else "existing",
        }
        for f in files
    ]
    return RawWrite(
        rows_per_day={d: n for d, n in counts}, files=described, rejected=dict(rejected)
    )


def _write_file(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    f: SourceFile,
    window: tuple[dt.date, dt.date],
    columns: str,
    stamp: dict[str, object],
    placement: dict[str, object],
) -> None:
    """One file, read once: its rows of the window into raw, and (replacing what an earlier run
    wrote) all its rejected rows and its rows per day. Runs inside the window's transaction."""
    lineage = {"source_file": f.name, "checksum": f.checksum}
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _sourced AS " + sourced_sql(spec, reader_sql(f, spec.source)),
        {"path": str(f.readable_path), **placement},
    )
    conn.execute(
        render(SQL / "raw_insert.sql", raw_table=spec.names.table("raw"), raw_columns=columns),
        {**lineage, **stamp, "start": window[0], "end": window[1]},
    )
    conn.execute(
        f"DELETE FROM {spec.names.table('rejected_rows')} WHERE _source_checksum = $checksum",
        {"checksum": f.checksum},
    )
    conn.execute(
        render(
            SQL / "rejected_insert.sql",
            rejected_table=spec.names.table("rejected_rows"),
            raw_columns=columns,
        ),
        {**lineage, **stamp},
    )
    conn.execute(
        f"DELETE FROM {spec.names.table('source_file_days')} WHERE checksum = $checksum",
        {"checksum": f.checksum},
    )
    conn.execute(
        render(SQL / "file_days_insert.sql", file_days_table=spec.names.table("source_file_days")),
        {"checksum": f.checksum, "run_id": stamp["run_id"]},
    )
    conn.execute("DROP TABLE _sourced")
