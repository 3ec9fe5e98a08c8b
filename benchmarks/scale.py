"""A data scaler: the bundled flights replicated to k x rows per day, keys unique, values jittered.

Replica i (i >= 1) shifts the flight number by i * 10000 (so the unique key stays unique),
jitters delays by a few minutes and the scheduled departure by up to +-10 minutes (kept on the
same day), and keeps everything else. The result is a Parquet file and a spec copy whose source
points at it, so the real pipeline runs on it unchanged apart from the flight-number range.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml_assets.core.spec import DatasetSpec, load_spec, read_spec_mapping, write_spec
from ml_assets.layers.ingest.files import resolve_source

REPO = Path(__file__).resolve().parent.parent
FLIGHTS_SPEC = REPO / "ml_assets" / "defs" / "flights" / "defs.yaml"

SCALE_SQL = """
COPY (
    WITH base AS (SELECT * FROM read_csv($path, all_varchar = true, nullstr = ['NA', ''])),
    reps AS (SELECT range AS i FROM range($k))
    SELECT
        year, month, day, dep_time,
        CASE WHEN i = 0 THEN sched_dep_time ELSE CAST(
            least(2359, greatest(1, CAST(sched_dep_time AS INTEGER)
                + CASE WHEN CAST(sched_dep_time AS INTEGER) % 100 BETWEEN 10 AND 49
                       THEN CAST(hash(i, flight, day) % 21 AS INTEGER) - 10 ELSE 0 END)) AS VARCHAR) END AS sched_dep_time,
        CASE WHEN i = 0 OR dep_delay IS NULL THEN dep_delay
             ELSE CAST(CAST(dep_delay AS INTEGER) + CAST(hash(i, flight, month) % 7 AS INTEGER) - 3 AS VARCHAR) END AS dep_delay,
        arr_time, sched_arr_time,
        CASE WHEN i = 0 OR arr_delay IS NULL THEN arr_delay
             ELSE CAST(CAST(arr_delay AS INTEGER) + CAST(hash(i, flight, month, day) % 7 AS INTEGER) - 3 AS VARCHAR) END AS arr_delay,
        carrier,
        CAST(CAST(flight AS INTEGER) + i * 10000 AS VARCHAR) AS flight,
        tailnum, origin, dest, air_time, distance, hour, minute, time_hour
    FROM base, reps
    ORDER BY year::INTEGER, month::INTEGER, day::INTEGER, i
) TO '{out}' (FORMAT parquet, ROW_GROUP_SIZE 100000)
"""


def scaled_flights(k: int, workdir: Path) -> DatasetSpec:
    """Write the k x dataset (once) and a spec for it; returns the loaded spec."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"flights_x{k}.parquet"
    base = load_spec(FLIGHTS_SPEC)
    if not data.exists():
        (src,) = resolve_source(base.source)
        tmp = data.with_suffix(".part")
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute(SCALE_SQL.format(out=tmp), {"path": str(src.readable_path), "k": k})
        tmp.rename(data)
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw["name"] = f"flights_x{k}"
    raw["source"] = {"files": [str(data)], "format": "parquet"}
    raw["contract"]["columns"]["flight"]["max"] = 10000 * k + 9999
    features = raw.get("features")
    if features:  # feature SQL paths are relative to the spec's folder: make them absolute
        features["sql"] = [str(FLIGHTS_SPEC.parent / p) for p in features.get("sql", [])]
    spec_path = workdir / f"flights_x{k}.yaml"
    write_spec(spec_path, raw)
    return load_spec(spec_path)
