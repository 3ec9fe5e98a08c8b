"""(1b) The backfill on the scale-out stack: a Dagster instance in PostgreSQL plus the DuckLake
warehouse (catalog in the same server, data files in a folder), the range split between 2
processes writing at once, against the embedded default (sqlite instance + DuckDB file, one run
in one process) measured in the same invocation.

The parallel side runs in two phases, each two processes at once (the halves of the range):
raw -> validated/quarantine (and the lookups, in the first process), then features. Features read a lookback of validated days, so the
second half's features wait for the first half's validated rows, as Dagster would order them.
Before the clock, one raw write of the first day registers the source file: two first writes at
once would both register it (DuckLake has no PRIMARY KEY; README, Scale-out).

A phase's time is from the earlier process's run start to the later one's end (definitions are
built before each clock, as on the embedded side). Peak memory: each process's VmHWM; the two of
a phase run together, so their sum is what the machine holds.

    python -m benchmarks.run --only backfill_multiwriter
    ML_ASSETS_BENCH_MULTIWRITER_SCALE=1 python -m benchmarks.run --only backfill_multiwriter
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.figures import GIB, scaled_spec, sources, window
from benchmarks.harness import Bench, Figure, Measure, figure, peak_rss_bytes
from benchmarks.worker import measure
from ml_assets.local_postgres import LocalPostgres

REPO = Path(__file__).resolve().parent.parent
SCALE_ENV = "ML_ASSETS_BENCH_MULTIWRITER_SCALE"
PROCESSES = 2
PHASES = {"layers": ("raw", "validated", "quarantine"), "features": ("features",)}


def _halves(start: dt.date, end: dt.date, n: int) -> list[tuple[dt.date, dt.date]]:
    days = (end - start).days + 1
    cuts = [start + dt.timedelta(days=days * i // n) for i in range(n + 1)]
    return [(cuts[i], cuts[i + 1] - dt.timedelta(days=1)) for i in range(n)]


def _lake_counts(spec_name: str) -> dict[str, int]:
    from ml_assets.resources.warehouse import Warehouse

    out = {}
    with Warehouse(database=":unused:").get_connection() as conn:
        for table in ("raw", "validated", "quarantine", "features"):
            ((n,),) = conn.execute(f'SELECT count(*) FROM "{spec_name}".{table}').fetchall()
            out[table] = n
    return out


def _child(task: dict[str, Any]) -> dict[str, Any]:
    """One process of the parallel side: a run of `task['assets']` over its half."""
    os.environ.update(task["env"])  # the DuckLake backend and the instance's DAGSTER_PG_*
    import dagster as dg

    from benchmarks.graph import new_home, open_postgres_instance, resolve_sources, run_window
    from ml_assets.core.spec import load_spec

    spec = load_spec(Path(task["spec"]))
    home = new_home(Path(task["home"]), resolve_sources(spec, Path(task["shared_home"])))
    if task.get("register"):
        from ml_assets.layers.ingest.raw import write_raw
        from ml_assets.resources.warehouse import warehouse_resource

        day = dt.date.fromisoformat(task["start"])
        with warehouse_resource().get_connection() as conn:
            write_raw(conn, spec, day, day, run_id="register", ingested_at=dt.datetime.now(dt.UTC))
        return {"counts": {}}
    instance = open_postgres_instance(Path(task["instance"]), task["env"])
    try:
        run = run_window(
            spec,
            home,
            instance,
            dt.date.fromisoformat(task["start"]),
            dt.date.fromisoformat(task["end"]),
            assets=[dg.AssetKey([spec.name, a]) for a in task["assets"]],
        )
    finally:
        instance.dispose()
    ended = time.time()
    return {"seconds": run.seconds, "started": ended - run.seconds, "ended": ended}


def _launch(task: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.multiwriter", json.dumps(task, default=str)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _collect(proc: subprocess.Popen[str], timeout: float = 3600) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"multi-writer process failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _parallel(bench: Bench, spec: Any, src: Any, start: dt.date, end: dt.date) -> dict[str, Any]:
    scratch = bench.scratch(f"multiwriter_{spec.name}")
    with LocalPostgres.start() as pg:
        env = {
            **pg.env(pg.create_database("dagster")),
            "ML_ASSETS_HOME": str(scratch / "home"),
            "ML_ASSETS_WAREHOUSE": "ducklake",
            "ML_ASSETS_DUCKLAKE_CATALOG": pg.dsn(pg.create_database("lake")),
            "ML_ASSETS_DUCKLAKE_DATA_PATH": str(scratch / "home" / "data" / "lake"),
        }
        base = {
            "spec": str(spec.path),
            "shared_home": str(src.home),
            "home": str(scratch / "home"),
            "instance": str(scratch / "dagster"),
            "env": env,
        }
        _collect(_launch({**base, "register": True, "start": start.isoformat()}))
        phases: dict[str, Any] = {}
        for phase, assets in PHASES.items():
            procs = [
                _launch(
                    {
                        **base,
                        # The lookups (unpartitioned) are loaded once, by the first process.
                        "assets": [*assets, *(["reference_tables"] if i == 0 else [])]
                        if phase == "layers"
                        else list(assets),
                        "start": lo.isoformat(),
                        "end": hi.isoformat(),
                    }
                )
                for i, (lo, hi) in enumerate(_halves(start, end, PROCESSES))
            ]
            results = [_collect(p) for p in procs]
            phases[phase] = {
                "seconds": max(r["ended"] for r in results) - min(r["started"] for r in results),
                "process_seconds": [round(r["seconds"], 2) for r in results],
                "peak_rss_gib": [round(r["peak_rss_bytes"] / GIB, 3) for r in results],
            }
            bench.log(f"  multi-writer {phase}: {phases[phase]}")
        os.environ.update({k: v for k, v in env.items() if k.startswith("ML_ASSETS_DUCKLAKE")})
        saved = os.environ.get("ML_ASSETS_WAREHOUSE")
        os.environ["ML_ASSETS_WAREHOUSE"] = "ducklake"
        try:
            counts = _lake_counts(spec.name)
        finally:
            if saved is None:
                os.environ.pop("ML_ASSETS_WAREHOUSE")
            else:
                os.environ["ML_ASSETS_WAREHOUSE"] = saved
    return {"phases": phases, "counts": counts}


@figure(
    "backfill_multiwriter",
    "(1b) Backfill: embedded vs Postgres instance + DuckLake, 2 processes",
    quick=False,
)
def backfill_multiwriter(bench: Bench) -> Figure:
    k = int(os.environ.get(SCALE_ENV, "10"))
    spec = scaled_spec(bench, k)
    src = sources(bench, spec)
    start, end = window(bench, spec)
    scratch = bench.scratch(f"multiwriter_embedded_x{k}")
    embedded = measure(
        {
            "kind": "graph",
            "spec": str(spec.path),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "shared_home": str(src.home),
            "home": str(scratch / "home"),
            "instance": str(scratch / "dagster"),
        }
    )
    bench.log(f"  embedded x{k}: {embedded['seconds']:.1f}s")
    multi = _parallel(bench, spec, src, start, end)
    phases = multi["phases"]
    total = sum(p["seconds"] for p in phases.values())
    peak_sum = max(sum(p["peak_rss_gib"]) for p in phases.values())
    same = multi["counts"] == embedded["rows"]
    ours = Measure(
        f"Postgres instance + DuckLake, {PROCESSES} processes",
        [total],
        {"phases": phases, "peak_rss_gib_sum_of_processes": round(peak_sum, 3)},
    )
    base = Measure(
        "embedded (sqlite instance + DuckDB file, one process)",
        [embedded["seconds"]],
        {"peak_rss_gib": round(embedded["peak_rss_bytes"] / GIB, 3)},
    )
    return Figure(
        ours=ours,
        baseline=base,
        goal="reported (rows must equal the embedded run's)",
        meets_goal=None if same else False,
        notes=(
            f"x{k}, {start}..{end}. Rows per layer: DuckLake {multi['counts']}, embedded "
            f"{embedded['rows']} ({'equal' if same else 'DIFFERENT'}). Peak RSS: embedded "
            f"{base.extra['peak_rss_gib']:.2f} GiB; parallel side {peak_sum:.2f} GiB summed "
            "over a phase's two processes."
        ),
        details={"scale": k, "processes": PROCESSES, "rows_equal": same},
    )


def main() -> None:
    result = _child(json.loads(sys.argv[1]))
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
