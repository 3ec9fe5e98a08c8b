"""Reference (lookup) tables: the spec's `lookups` loaded whole into `<ds>.ref_<name>`.

Lookups are small, slowly changing tables (weather, planes, airports) that feature SQL joins to.
They are loaded with types detected by DuckDB over the whole file, so a column that is `NA` in its
first rows is still typed by its values; the feature SQL casts defensively all the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb

from ml_assets.core.spec import DatasetSpec, SourceSpec
from ml_assets.core.sql import ident, literal, transaction
from ml_assets.layers.ingest.files import SourceError, SourceFile, resolve_source


@dataclass(frozen=True)
class RefTable:
    name: str  # the lookup's name in the spec
    table: str  # `<ds>.ref_<name>`
    rows: int
    checksum: str  # sha256 of the file, or of the sorted file checksums for several files
    files: list[str]


def _reader(source: SourceSpec) -> str:
    if source.format == "parquet":
        return "SELECT * FROM read_parquet($paths)"
    csv = source.csv
    nulls = ", ".join(literal(s) for s in csv.null_strings)
    return (
        f"SELECT * FROM read_csv($paths, header = {literal(csv.header)}, "
        f"delim = {literal(csv.delimiter)}, nullstr = [{nulls}], sample_size = -1)"
    )


def checksum(files: list[SourceFile]) -> str:
    sums = sorted(f.checksum for f in files)
    if len(sums) == 1:
        return sums[0]
    return hashlib.sha256(",".join(sums).encode()).hexdigest()


def load_reference_tables(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> list[RefTable]:
    """Replace every `<ds>.ref_<name>` in one transaction: all lookups change together or none.

    Files are resolved before anything is written, so a missing file fails with its name and
    leaves the previous tables in place.
    """
    resolved = {name: resolve_source(source) for name, source in spec.lookups.items()}
    loaded = []
    with transaction(conn):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(spec.name)}")
        for name, files in resolved.items():
            table = spec.names.ref_table(name)
            paths = [str(f.readable_path) for f in files]
            try:
                conn.execute(
                    f"CREATE OR REPLACE TABLE {table} AS {_reader(spec.lookups[name])}",
                    {"paths": paths},
                )
            except duckdb.Error as exc:
                first = str(exc).strip().splitlines()[0]
                raise SourceError(f"lookup '{name}' ({', '.join(paths)}): {first}") from None
            ((rows,),) = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
            loaded.append(
                RefTable(
                    name,
                    spec.names.ref_table_name(name),
                    rows,
                    checksum(files),
                    [f.name for f in files],
                )
            )
    return loaded


def missing_reference_tables(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> list[str]:
    present = {
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [spec.name]
        ).fetchall()
    }
    return [name for name in spec.lookups if f"ref_{name}" not in present]
