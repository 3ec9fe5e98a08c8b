"""Figure `many_small_partitions` (issue 13): a user's CSV of one row per day over 16 years.

5,698 days from 2009-01-01, one row each (1.6 MB): the raw -> validated/quarantine layers as one
single-run backfill of 5,698 daily partitions, with their per-day checks, on an empty warehouse
and an empty sqlite Dagster instance, against a bare DuckDB script that computes the same three
tables. What the graph pays for is per partition, not per row: 12 events a day (a planned and a
done materialization of each asset, six per-day check records), so this figure is where event
cost shows.

The dataset is made as a user makes one: the CSV is generated, `ml-assets init` (the installed
console script) writes its spec into the scratch folder, then some days are damaged the way new
data breaks a contract (a negative price, a text in an integer column, an unknown region), so
quarantine has rows. `--quick` runs 60 days.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bare_data_layers import LAYERS, verify
from benchmarks.graph import project_home
from benchmarks.harness import Bench, Figure, Measure, figure
from benchmarks.worker import measure
from ml_assets.core.spec import load_spec

NAME = "many_days"
START = dt.date(2009, 1, 1)
DAYS, QUICK_DAYS = 5698, 60
GOAL_S = 60.0
CLI = Path(sys.executable).parent / "ml-assets"
CSV_PATH = Path("data") / "input" / "many_days.csv"  # under each project home
# Damage, by day number: each breaks one rule of the contract `ml-assets init` wrote.
BAD_PRICE, BAD_VISITORS, BAD_REGION = 17, 29, 41


def write_csv(path: Path, days: int, *, damaged: bool) -> Path:
    """One row per day from START, a regression label `sales`; `damaged` breaks a few days."""
    rng = np.random.default_rng(13)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            ["date", "region", "promo", "price", "temperature", "visitors", "notes", "sales"]
        )
        for d in range(days):
            promo = bool(rng.random() < 0.3)
            price = round(float(rng.uniform(5, 15)), 2)
            visitors = int(rng.poisson(200))
            sales = 200 + 40 * promo - 8 * price + 0.3 * visitors + rng.normal(0, 12)
            row = {
                "date": (START + dt.timedelta(days=d)).isoformat(),
                "region": ("north", "south", "east")[d % 3],
                "promo": str(promo).lower(),
                "price": price,
                "temperature": round(float(rng.normal(10, 8)), 1),
                "visitors": visitors,
                "notes": "note " * int(rng.integers(40, 60)),
                "sales": round(float(sales), 2),
            }
            if damaged and d and d % BAD_PRICE == 0:
                row["price"] = -1.5
            if damaged and d and d % BAD_VISITORS == 0:
                row["visitors"] = "many"
            if damaged and d and d % BAD_REGION == 0:
                row["region"] = "west"
            out.writerow(row.values())
    return path


def make_dataset(workdir: Path, days: int) -> tuple[Path, Path]:
    """The CSV and the spec `ml-assets init` writes for it (then the CSV is damaged)."""
    home = workdir / "init_home"
    source = write_csv(home / CSV_PATH, days, damaged=False)
    specs = workdir / "specs"
    done = subprocess.run(
        [str(CLI), "init", str(source), "--name", NAME, "--label", "sales", "--out", str(specs)],
        capture_output=True,
        text=True,
        env={**os.environ, "ML_ASSETS_HOME": str(home)},
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ml-assets init failed:\n{done.stderr[-3000:]}")
    write_csv(source, days, damaged=True)
    return specs / NAME / "defs.yaml", source


def new_home(path: Path, source: Path) -> Path:
    """A project home holding only the CSV, where the spec's relative source path points."""
    target = path / CSV_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return path


# -- the two sides, each run in a fresh process by `benchmarks.worker` -------------------------


def run_graph(task: dict[str, Any]) -> dict[str, Any]:
    """`<ds>__daily_layers` restricted to raw, validated and quarantine (with their checks)."""
    from benchmarks.graph import open_instance, run_window, table_counts, warehouse_file

    home = new_home(Path(task["home"]), Path(task["source"]))
    with project_home(home):
        spec = load_spec(Path(task["spec"]))
    instance_dir = Path(task["instance"])
    instance = open_instance(instance_dir)
    try:
        run = run_window(
            spec,
            home,
            instance,
            dt.date.fromisoformat(task["start"]),
            dt.date.fromisoformat(task["end"]),
            assets=[spec.names.key(layer) for layer in LAYERS],
        )
    finally:
        instance.dispose()
    return {
        "seconds": run.seconds,
        "rows": table_counts(warehouse_file(home), spec),
        "events": event_counts(instance_dir, run.run_id),
        "step_seconds": run.step_seconds,
        "db": str(warehouse_file(home)),
    }


def event_counts(instance_dir: Path, run_id: str) -> dict[str, int]:
    """Events the run stored, by type (read from its sqlite shard, outside the timed run)."""
    shard = instance_dir / "history" / "runs" / f"{run_id}.db"
    with sqlite3.connect(shard) as conn:
        rows = conn.execute(
            "SELECT dagster_event_type, count(*) FROM event_logs GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    return {str(kind): n for kind, n in rows}


# -- the figure --------------------------------------------------------------------------------


@figure(
    "many_small_partitions",
    "(8) 5,698 one-row daily partitions: raw -> validated/quarantine, with checks",
)
def many_small_partitions(bench: Bench) -> Figure:
    days = QUICK_DAYS if bench.quick else DAYS
    work = bench.scratch("partitions_dataset")
    spec_path, source = make_dataset(work, days)
    with project_home(work / "init_home"):
        spec = load_spec(spec_path)
    end = START + dt.timedelta(days=days - 1)
    common = {
        "spec": str(spec_path),
        "source": str(source),
        "start": START.isoformat(),
        "end": end.isoformat(),
    }
    runs: dict[str, list[dict[str, Any]]] = {"graph": [], "duckdb": []}
    kept: dict[str, Path] = {}
    for i in range(bench.repeats):
        for kind in runs:  # interleaved, so load from elsewhere hits both sides alike
            scratch = bench.scratch(f"partitions_{kind}")
            where = (
                {"home": str(scratch / "home"), "instance": str(scratch / "dagster")}
                if kind == "graph"
                else {"out": str(scratch / "bare.duckdb")}
            )
            result = measure({"kind": f"partitions_{kind}", **common, **where})
            runs[kind].append(result)
            bench.log(
                f"  {days} days {kind:<7} run {i + 1}/{bench.repeats}: {result['seconds']:.2f}s"
            )
            if kind in kept:
                shutil.rmtree(kept[kind], ignore_errors=True)
            kept[kind] = scratch
    checks = verify(spec, Path(runs["graph"][-1]["db"]), Path(runs["duckdb"][-1]["db"]))
    for folder in [*kept.values(), work]:
        shutil.rmtree(folder, ignore_errors=True)
    graph_rows = {k: v for k, v in runs["graph"][-1]["rows"].items() if k in LAYERS}
    bare_rows = runs["duckdb"][-1]["rows"]
    verified = graph_rows == bare_rows and checks["agree"]
    ours = Measure(
        "graph: Dagster run raw -> validated/quarantine, with per-day checks",
        [r["seconds"] for r in runs["graph"]],
        {"rows": graph_rows},
    )
    base = Measure(
        "bare DuckDB script", [r["seconds"] for r in runs["duckdb"]], {"rows": bare_rows}
    )
    events = runs["graph"][-1]["events"]
    per_day = sum(events.values()) / days
    full = days == DAYS
    return Figure(
        ours=ours,
        baseline=base,
        goal=f"<= {GOAL_S:.0f} s for {DAYS:,} days",
        meets_goal=ours.median <= GOAL_S if full else None,
        ratio_label="graph / bare DuckDB",
        notes=(
            f"{days:,} days x 1 row from `ml-assets init` on a generated CSV, "
            f"{graph_rows['quarantine']} rows quarantined; {bench.repeats} repeat(s), each in a "
            f"fresh process from an empty warehouse and sqlite instance; "
            f"{1000 * ours.median / days:.1f} ms and {per_day:.1f} events per partition. "
            + ("Outputs verified identical." if verified else "OUTPUTS DIFFER: see details.")
            + ("" if full else " Quick mode: the goal is judged at 5,698 days.")
        ),
        details={
            "days": days,
            "repeats": bench.repeats,
            "verified": verified,
            "rows": {"graph": graph_rows, "duckdb": bare_rows},
            "verification": checks,
            "events_by_type": events,
            "events_per_partition": round(per_day, 2),
            "ms_per_partition": round(1000 * ours.median / days, 2),
            "graph_step_seconds": runs["graph"][-1]["step_seconds"],
        },
    )
