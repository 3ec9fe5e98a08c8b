"""The figures of issue 6, each measured against a baseline in the same harness run.

Registered in the issue's order; `benchmarks.run` runs them in this order. Figures (4) training
overhead and (5) scoring throughput are placeholders in `benchmarks.run.PLANNED` until a module
registers functions named `training_overhead` and `scoring_throughput` with `@figure`.

Starting states, chosen deliberately:
- backfills start from an empty warehouse and an empty Dagster instance (nothing to skip);
- the incremental day and the orchestration floor start from a copy of a warehouse + instance
  that already hold the history (made once, copied per repeat), so every repeat does the same
  work: materialize one new day.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
from pathlib import Path
from typing import Any

import duckdb

from benchmarks import drift
from benchmarks.graph import (
    Sources,
    new_home,
    open_instance,
    plain_window,
    resolve_sources,
    run_window,
    snapshot,
    warehouse_file,
)
from benchmarks.harness import Bench, Figure, Measure, figure
from benchmarks.scale import FLIGHTS_SPEC, scaled_flights
from benchmarks.verify import compare
from benchmarks.worker import measure
from ml_assets.core.spec import DatasetSpec, load_spec
from ml_assets.core.sql import ident
from ml_assets.local_postgres import LocalPostgres
from ml_assets.resources.warehouse import memory_limit

GIB = 2**30
BACKFILL_RATIO_GOAL = 1.5
INCREMENTAL_RATIO_GOAL = 1.2
DRIFT_SPEEDUP_GOAL = 20.0
PEAK_RSS_GOAL_GIB = 2.0
SHORT_HISTORY_DAYS = 30


def scaled_spec(bench: Bench, k: int) -> DatasetSpec:
    """The bundled flights at k x rows per day (k = 1: the bundled spec itself)."""
    key = f"spec_x{k}"
    if key not in bench.cache:
        bench.cache[key] = (
            load_spec(FLIGHTS_SPEC) if k == 1 else scaled_flights(k, bench.workdir / "scaled")
        )
    return bench.cache[key]


def sources(bench: Bench, spec: DatasetSpec) -> Sources:
    key = f"sources_{spec.name}"
    if key not in bench.cache:
        bench.cache[key] = resolve_sources(spec, bench.workdir / "shared_home")
    return bench.cache[key]


def window(bench: Bench, spec: DatasetSpec) -> tuple[dt.date, dt.date]:
    start = spec.partitions.start
    return start, start + dt.timedelta(days=bench.days - 1)


# -- (1) backfill ------------------------------------------------------------------------------


def _backfill(bench: Bench, k: int) -> Figure:
    spec = scaled_spec(bench, k)
    src = sources(bench, spec)
    start, end = window(bench, spec)
    (source,) = src.source
    common = {
        "spec": str(spec.path),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "source": str(source.readable_path),
        "format": source.format,
        "lookups": {n: [str(f.readable_path) for f in fs] for n, fs in src.lookups.items()},
        "memory_limit": bench.duckdb_memory_limit,
    }
    repeats = bench.repeats if k == 1 else bench.repeats_10x
    # `graph_memory`: the same run on an in-memory Dagster instance, to tell the event log's
    # storage cost from the rest (1x only, to keep the 10x figure within the time budget).
    # `graph_postgres`: the same run on a Dagster instance in PostgreSQL (`dagster.postgres.yaml`,
    # a local server started for the figure, a new database per run), at both scales.
    kinds = ["graph", "graph_postgres", "duckdb", "pandas", *(["graph_memory"] if k == 1 else [])]
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    outputs = {
        "graph": lambda d: warehouse_file(d / "home"),
        "graph_postgres": lambda d: warehouse_file(d / "home"),
        "graph_memory": lambda d: warehouse_file(d / "home"),
        "duckdb": lambda d: d / "bare.duckdb",
        "pandas": lambda d: d / "features.parquet",
    }
    kept: dict[str, Path] = {}  # the latest run's folder per kind, for the verification
    with LocalPostgres.start() as postgres:
        for i in range(repeats):
            # Interleaved, so a burst of load from elsewhere hits every side alike.
            for kind in kinds:
                scratch = bench.scratch(f"backfill_x{k}_{kind}")
                if kind.startswith("graph"):
                    task = {
                        "kind": "graph",
                        "spec": str(spec.path),
                        "start": common["start"],
                        "end": common["end"],
                        "shared_home": str(src.home),
                        "home": str(scratch / "home"),
                        "instance": "memory"
                        if kind == "graph_memory"
                        else str(scratch / "dagster"),
                        "memory_limit": bench.duckdb_memory_limit,
                    }
                    if kind == "graph_postgres":
                        task["postgres"] = postgres.env(postgres.create_database(f"x{k}_run{i}"))
                else:
                    task = {"kind": kind, **common, "out": str(outputs[kind](scratch))}
                result = measure(task)
                runs[kind].append(result)
                bench.log(
                    f"  x{k} {kind:<12} run {i + 1}/{repeats}: {result['seconds']:.2f}s, "
                    f"peak {result['peak_rss_bytes'] / GIB:.2f} GiB"
                )
                if kind in kept:
                    shutil.rmtree(kept[kind], ignore_errors=True)
                kept[kind] = scratch
    graph_db, duck_db, pandas_out = (
        outputs[kind](kept[kind]) for kind in ("graph", "duckdb", "pandas")
    )
    postgres_db = outputs["graph_postgres"](kept["graph_postgres"])
    checks = {
        "graph_vs_duckdb": compare(spec, ("graph", graph_db), ("duckdb", duck_db)),
        "graph_postgres_vs_duckdb": compare(spec, ("graph", postgres_db), ("duckdb", duck_db)),
        "pandas_vs_duckdb": compare(spec, ("parquet", pandas_out), ("duckdb", duck_db)),
    }
    for folder in kept.values():
        shutil.rmtree(folder, ignore_errors=True)
    rows = {kind: r[-1]["rows"] for kind, r in runs.items()}
    same_rows = all(
        rows[kind]["validated"] == rows["graph"]["validated"]
        and rows[kind]["features"] == rows["graph"]["features"]
        for kind in kinds
    )
    verified = same_rows and all(c["agree"] for c in checks.values())

    def measure_of(kind: str, name: str) -> Measure:
        return Measure(
            name,
            [r["seconds"] for r in runs[kind]],
            {
                "peak_rss_gib": [round(r["peak_rss_bytes"] / GIB, 3) for r in runs[kind]],
                "rows": rows[kind],
            },
        )

    ours = measure_of("graph", "graph: Dagster run raw -> validated -> features, with checks")
    duck = measure_of("duckdb", "bare DuckDB script")
    pandas = measure_of("pandas", "bare pandas script")
    bench.cache[f"backfill_x{k}"] = {"graph": ours, "duckdb": duck, "pandas": pandas}
    ratio = ours.median / duck.median
    judged = k >= 10
    meets = (ratio <= BACKFILL_RATIO_GOAL and ours.median < pandas.median) if judged else None
    steps = _median_steps([r["step_seconds"] for r in runs["graph"]])
    on_postgres = measure_of("graph_postgres", "graph on a Dagster instance in PostgreSQL")
    extra: dict[str, Any] = {
        # Side by side with the embedded default (`ours`): wall time and the run process's peak
        # RSS; the PostgreSQL server's own processes are not in that peak.
        "graph_postgres_instance": on_postgres.to_json(),
        "graph_postgres_instance_ratio": round(on_postgres.median / duck.median, 4),
        "postgres_vs_sqlite_instance": round(on_postgres.median / ours.median, 4),
    }
    if "graph_memory" in runs:
        memory = measure_of("graph_memory", "graph on an in-memory Dagster instance")
        extra |= {
            "graph_in_memory_instance": memory.to_json(),
            # What writing the event log (sqlite, on this disk) costs the run.
            "event_log_storage_s": round(ours.median - memory.median, 3),
            "graph_in_memory_instance_ratio": round(memory.median / duck.median, 4),
        }
    features_s = next((v for key, v in steps.items() if key.endswith("__features")), None)
    missed = (
        f" Missed against pandas: the graph's features step alone took {features_s:.1f}s of its "
        f"{ours.median:.1f}s, against {pandas.median:.1f}s for the whole pandas script (rolling "
        "rates as cumulative sums per key in NumPy; the graph's are SQL running sums with an "
        "ASOF join per entity, and RANGE frames for the same-day windows). Next lever: per-key "
        "daily aggregates for the label windows, and the same-day windows split by day."
        if meets is False and features_s is not None and ours.median >= pandas.median
        else ""
    )
    return Figure(
        ours=ours,
        baseline=duck,
        other_baselines=[pandas],
        goal=(
            f"<= {BACKFILL_RATIO_GOAL}x bare DuckDB and faster than bare pandas"
            if judged
            else "reported (the goal is judged at 10x)"
        ),
        meets_goal=meets,
        ratio_label="graph / bare DuckDB",
        notes=(
            f"{bench.days} days, {rows['graph']['validated']:,} validated rows from "
            f"{source.format}; {repeats} repeat(s), each in a fresh process from an empty "
            "warehouse and instance; the graph also keeps raw text, quarantine, lineage columns "
            "and runs its checks. "
            + ("Outputs verified identical." if verified else "OUTPUTS DIFFER: see details.")
            + (
                f" On an in-memory Dagster instance the same run takes "
                f"{extra['graph_in_memory_instance']['median_s']:.1f}s: the sqlite event log "
                f"(about two events per asset per partition) costs {extra['event_log_storage_s']:.1f}s."
                if "graph_memory" in runs
                else ""
            )
            + (
                f" On a Dagster instance in PostgreSQL (dagster.postgres.yaml, local server): "
                f"{on_postgres.median:.1f}s, peak RSS "
                f"{max(on_postgres.extra['peak_rss_gib']):.2f} GiB (sqlite instance: "
                f"{ours.median:.1f}s, {max(ours.extra['peak_rss_gib']):.2f} GiB)."
            )
            + missed
        ),
        details={
            "scale": k,
            "days": bench.days,
            "repeats": repeats,
            "verified": verified,
            "rows": rows,
            "verification": checks,
            "graph_step_seconds_median": steps,
            "graph_steps_total_s": round(sum(steps.values()), 3),
            "pandas_ratio": round(ours.median / pandas.median, 4),
            **extra,
        },
    )


def _median_steps(step_runs: list[dict[str, float]]) -> dict[str, float]:
    keys = step_runs[0].keys() if step_runs else []
    return {k: round(statistics.median(r.get(k, 0.0) for r in step_runs), 3) for k in keys}


@figure("backfill_1x", "(1) Backfill, 1x: raw -> validated -> features")
def backfill_1x(bench: Bench) -> Figure:
    return _backfill(bench, 1)


@figure("backfill_10x", "(1) Backfill, 10x: raw -> validated -> features", quick=False)
def backfill_10x(bench: Bench) -> Figure:
    return _backfill(bench, 10)


# -- (2) incremental day and (7) orchestration floor ------------------------------------------


def _history(bench: Bench, spec: DatasetSpec, first: dt.date, last: dt.date) -> Path:
    """A closed snapshot (home + instance) holding [first, last], built once per run."""
    key = f"history_{spec.name}_{first}_{last}"
    if key not in bench.cache:
        build = bench.scratch("history_build")
        home = new_home(build / "home", sources(bench, spec))
        instance = open_instance(build / "dagster")
        try:
            run_window(spec, home, instance, first, last)
        finally:
            instance.dispose()
        target = bench.scratch("history")
        snapshot(home, build / "dagster", target)
        shutil.rmtree(build)
        bench.cache[key] = target
    return bench.cache[key]


def _one_day(
    spec: DatasetSpec, scratch: Path, history: Path, day: dt.date, plain: bool = False
) -> tuple[float, float, int]:
    """Materialize `day` on a fresh copy of `history`: wall time, check-step time, feature rows."""
    shutil.copytree(history / "home", scratch / "home")
    shutil.copytree(history / "dagster", scratch / "dagster")
    home = scratch / "home"
    checks = 0.0
    try:
        if plain:
            seconds = plain_window(spec, home, day, day)
        else:
            instance = open_instance(scratch / "dagster")
            try:
                run = run_window(spec, home, instance, day, day)
            finally:
                instance.dispose()
            seconds, checks = run.seconds, run.check_seconds
        with duckdb.connect(str(warehouse_file(home)), read_only=True) as conn:
            ((rows,),) = conn.execute(
                f"SELECT count(*) FROM {ident(spec.name)}.features WHERE _partition_date = ?",
                [day],
            ).fetchall()
    finally:
        shutil.rmtree(scratch)
    return seconds, checks, rows


def _alternating(bench: Bench, sides: dict[str, Any]) -> dict[str, list[tuple[float, float, int]]]:
    """`repeats` runs of each side, alternating sides so load from elsewhere hits both alike."""
    out: dict[str, list[tuple[float, float, int]]] = {name: [] for name in sides}
    for _ in range(bench.repeats):
        for name, run in sides.items():
            out[name].append(run(bench.scratch("one_day")))
    return out


def _incremental_setup(bench: Bench) -> tuple[DatasetSpec, dt.date, dt.date, dt.date]:
    spec = scaled_spec(bench, 1)
    start, new_day = window(bench, spec)
    short = max(start, new_day - dt.timedelta(days=SHORT_HISTORY_DAYS if not bench.quick else 3))
    return spec, start, short, new_day


@figure("incremental_day", "(2) One new day: long history vs 30 days of history")
def incremental_day(bench: Bench) -> Figure:
    spec, start, short_start, new_day = _incremental_setup(bench)
    before = new_day - dt.timedelta(days=1)
    long_history = _history(bench, spec, start, before)
    short_history = _history(bench, spec, short_start, before)
    runs = _alternating(
        bench,
        {
            "long": lambda d: _one_day(spec, d, long_history, new_day),
            "short": lambda d: _one_day(spec, d, short_history, new_day),
        },
    )
    long_s, long_rows = [r[0] for r in runs["long"]], [r[2] for r in runs["long"]]
    short_s, short_rows = [r[0] for r in runs["short"]], [r[2] for r in runs["short"]]
    long_days, short_days = (before - start).days + 1, (before - short_start).days + 1
    ours = Measure(f"{new_day} with {long_days} days of history", long_s, {"rows": long_rows[-1]})
    base = Measure(
        f"{new_day} with {short_days} days of history", short_s, {"rows": short_rows[-1]}
    )
    ratio = ours.median / base.median
    same = long_rows == short_rows
    return Figure(
        ours=ours,
        baseline=base,
        goal=f"ratio <= {INCREMENTAL_RATIO_GOAL}",
        meets_goal=ratio <= INCREMENTAL_RATIO_GOAL,
        ratio_label=f"{long_days}-day history / {short_days}-day history",
        notes=(
            "1x; a Dagster run of the daily layers for one day on a copy of a warehouse and "
            "instance already holding the history. "
            + ("Same feature rows for the day either way." if same else "ROW COUNTS DIFFER.")
        ),
        details={"day": new_day.isoformat(), "feature_rows": long_rows[-1], "verified": same},
    )


# -- (3) drift ---------------------------------------------------------------------------------


@figure("drift", "(3) Drift statistics vs Evidently DataDriftPreset")
def drift_figure(bench: Bench) -> Figure:
    result = drift.run(bench.drift_rows, bench.repeats)
    ours = Measure("compute_drift (drift_report's statistics)", result["ours_s_runs"])
    base = Measure("Evidently DataDriftPreset (run once)", [result["evidently_s"]])
    speedup = base.median / ours.median
    agree = bool(result["verdicts_agree"])
    return Figure(
        ours=ours,
        baseline=base,
        goal=f">= {DRIFT_SPEEDUP_GOAL:.0f}x faster than Evidently, same verdicts",
        meets_goal=speedup >= DRIFT_SPEEDUP_GOAL and agree,
        ratio=speedup,
        ratio_label="Evidently / ours (speedup)",
        notes=(
            f"{result['rows']:,} rows x {result['features']} features per side; "
            f"verdicts {'agree' if agree else 'DIFFER'} "
            f"({len(result['drifted_ours'])} drifted columns)."
        ),
        details={**result, "verified": agree},
    )


# -- (6) peak memory, from the 10x backfill's processes ------------------------------------------


@figure("peak_memory_10x", "(6) Peak RSS of the 10x backfill", quick=False)
def peak_memory_10x(bench: Bench) -> Figure:
    measured = bench.cache.get("backfill_x10")
    if measured is None:
        raise RuntimeError("needs the backfill_10x figure in the same run")
    ours = Measure("graph process peak RSS (GiB)", measured["graph"].extra["peak_rss_gib"])
    base = Measure("bare DuckDB process peak RSS (GiB)", measured["duckdb"].extra["peak_rss_gib"])
    pandas = Measure("bare pandas process peak RSS (GiB)", measured["pandas"].extra["peak_rss_gib"])
    peak = max(ours.runs)
    return Figure(
        ours=ours,
        baseline=base,
        other_baselines=[pandas],
        unit="GiB",
        goal=f"<= {PEAK_RSS_GOAL_GIB} GiB",
        meets_goal=peak <= PEAK_RSS_GOAL_GIB,
        ratio_label="graph / bare DuckDB",
        notes=(
            f"VmHWM of each backfill's own process (Python + Dagster + DuckDB); worst run "
            f"{peak:.2f} GiB. DuckDB memory_limit: "
            + (
                bench.duckdb_memory_limit
                or f"the warehouse resource's default for the graph ({memory_limit()}), "
                "none for the bare script"
            )
            + "."
        ),
        details={"worst_gib": peak},
    )


# -- (7) orchestration floor ---------------------------------------------------------------

DAGSTER_SHARE_GOAL = 0.30  # issue 13: one daily run at 1x with Dagster's share under 30%


@figure("orchestration_floor", "(7) One daily run at 1x: wall time and Dagster's share")
def orchestration_floor(bench: Bench) -> Figure:
    spec, _, short_start, new_day = _incremental_setup(bench)
    history = _history(bench, spec, short_start, new_day - dt.timedelta(days=1))
    runs = _alternating(
        bench,
        {
            "dagster": lambda d: _one_day(spec, d, history, new_day),
            "plain": lambda d: _one_day(spec, d, history, new_day, plain=True),
        },
    )
    run_s, check_s, run_rows = (list(x) for x in zip(*runs["dagster"], strict=True))
    plain_s, _, plain_rows = (list(x) for x in zip(*runs["plain"], strict=True))
    ours = Measure("Dagster run, one day, raw -> validated -> features + checks", run_s)
    base = Measure("the same layer functions called directly (no checks)", plain_s)
    checks = statistics.median(check_s)
    overhead = ours.median - base.median - checks
    return Figure(
        ours=ours,
        baseline=base,
        goal=f"Dagster's share (run - plain functions - checks) < {DAGSTER_SHARE_GOAL:.0%}",
        meets_goal=overhead / ours.median < DAGSTER_SHARE_GOAL,
        ratio_label="Dagster run / plain functions",
        notes=(
            f"Overhead = run wall time - plain functions - time inside check steps = "
            f"{overhead:.2f}s, {overhead / ours.median:.0%} of the run. Starts from "
            f"{(new_day - short_start).days} days of history. Layers: raw, validated, "
            "reference tables, features (prediction/drift/performance to be added)."
        ),
        details={
            "day": new_day.isoformat(),
            "check_steps_s_median": round(checks, 4),
            "check_steps_s_runs": [round(c, 4) for c in check_s],
            "dagster_minus_plain_s": round(ours.median - base.median, 4),
            "orchestration_overhead_s": round(overhead, 4),
            "orchestration_share": round(overhead / ours.median, 4),
            "rows": {"graph": run_rows[-1], "plain": plain_rows[-1]},
            "verified": run_rows == plain_rows,
        },
    )
