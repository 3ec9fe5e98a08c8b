"""Build an online snapshot from the warehouse: streams, reference tables, provenance, schema.

This is the only code of the online path that reads the warehouse; it runs inside the asset,
in the warehouse pool. What it writes is everything serving needs and nothing it must not see:
per-entity past values (never a label of a row the window could not know), the lookups the
feature SQL joins to, and the lineage of rows scored in batch.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import ident, render, table_exists
from ml_assets.layers.online.schema import OnlineSchema, Stream, online_schema

SQL = Path(__file__).parent / "sql"


def entity_expr(by: tuple[str, ...], relation: str = "") -> str:
    """One text per entity; NULL key parts stay distinct from any value (as in PARTITION BY).
    The store and the request path both call this, so the two can never format keys apart."""
    prefix = f"{relation}." if relation else ""
    parts = ", ".join(f"CAST({prefix}{ident(c)} AS VARCHAR)" for c in by)
    return f"CAST(to_json(list_value({parts})) AS VARCHAR)"


def stream_sql(spec: DatasetSpec, stream: Stream) -> str:
    """The SELECT of one stream over `<ds>.validated` (bound: $history_start, $as_of)."""
    if stream.known_at is not None:
        known = (
            f"CASE WHEN ({stream.known_at}) IS NOT NULL "
            f"THEN greatest(({stream.known_at}), _event_time + INTERVAL 1 MICROSECOND) END"
        )
        time, value = "_known", f"CAST({ident(stream.of)} AS DOUBLE)"
        present = f"_known IS NOT NULL AND {ident(stream.of)} IS NOT NULL"
    elif stream.of == "label":
        known, time, value, present = "NULL", "_event_time", "_label", "_label IS NOT NULL"
    elif stream.of == "*":
        known, time, value, present = "NULL", "_event_time", "1.0", "TRUE"
    else:
        known, time = "NULL", "_event_time"
        value = f"CAST({ident(stream.of)} AS DOUBLE)"
        present = f"{ident(stream.of)} IS NOT NULL"
    return render(
        SQL / "stream.sql",
        entity=entity_expr(stream.by),
        time=time,
        value=value,
        known=known,
        present=present,
        validated_table=spec.names.table("validated"),
    )


def newest_features_day(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> dt.date | None:
    if not table_exists(conn, spec.name, "features"):
        return None
    ((day,),) = conn.execute(
        f"SELECT max(_partition_date) FROM {spec.names.table('features')}"
    ).fetchall()
    return day


def build_snapshot(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    directory: Path,
    as_of: dt.date,
    *,
    schema: OnlineSchema | None = None,
) -> dict:
    """Write the snapshot's files into `directory`; return its manifest (not yet written).

    History covers [as_of - lookback_days, as_of]: every row any window of a request on or
    before the end of `as_of` can read, exactly the days the offline build of `as_of` reads.
    """
    schema = schema or online_schema(spec)
    # A cursor of its own: Arrow results stream, and the caller's connection may hold a result.
    cur = conn.cursor()
    history_start = as_of - dt.timedelta(days=spec.features.lookback_days)
    window = {"history_start": history_start, "as_of": as_of}
    (directory / "streams").mkdir()
    streams = {}
    for stream in schema.streams:
        table = cur.sql(stream_sql(spec, stream), params=window).to_arrow_table()
        pq.write_table(table, directory / "streams" / f"{stream.name}.parquet")
        streams[stream.name] = table.num_rows
    (directory / "lookups").mkdir()
    lookups = {}
    for name in spec.lookups:
        table = cur.sql(f"SELECT * FROM {spec.names.ref_table(name)}").to_arrow_table()
        pq.write_table(table, directory / "lookups" / f"{name}.parquet")
        lookups[name] = table.num_rows
    provenance = None
    if table_exists(conn.cursor(), spec.name, "predictions"):
        sql = render(
            SQL / "provenance.sql",
            predictions_table=spec.names.table("predictions"),
            features_table=spec.names.table("features"),
            validated_table=spec.names.table("validated"),
            source_files_table=spec.names.table("source_files"),
        )
        table = cur.sql(sql, params=window).to_arrow_table()
        pq.write_table(table, directory / "provenance.parquet")
        provenance = table.num_rows
    return {
        "dataset": spec.name,
        "as_of": as_of.isoformat(),
        "history_start": history_start.isoformat(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "schema": schema.to_dict(),
        "stream_rows": streams,
        "lookup_rows": lookups,
        "provenance_rows": provenance,
    }
