"""One backfill measurement in a fresh process: the graph, the bare DuckDB or the bare pandas script.

A fresh process per measurement gives each its own peak resident set (VmHWM, which counts
DuckDB's native memory too) and keeps one measurement's warm state from helping the next.
Imports happen before the clock starts; the printed JSON (last line of stdout) carries the wall
time, the row counts and the peak RSS.

    python -m benchmarks.worker '{"kind": "graph", ...}'
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import peak_rss_bytes
from ml_assets.core.spec import load_spec


def _graph(task: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.graph import (
        limited_warehouse,
        new_home,
        open_instance,
        open_postgres_instance,
        resolve_sources,
        run_window,
        table_counts,
        warehouse_file,
    )

    spec = load_spec(Path(task["spec"]))
    sources = resolve_sources(spec, Path(task["shared_home"]))
    home = new_home(Path(task["home"]), sources)
    if task.get("postgres"):
        instance = open_postgres_instance(Path(task["instance"]), task["postgres"])
    else:
        instance = open_instance(Path(task["instance"]) if task["instance"] != "memory" else None)
    try:
        run = run_window(
            spec,
            home,
            instance,
            dt.date.fromisoformat(task["start"]),
            dt.date.fromisoformat(task["end"]),
            resources=limited_warehouse(home, task.get("memory_limit")),
        )
    finally:
        instance.dispose()
    return {
        "seconds": run.seconds,
        "rows": table_counts(warehouse_file(home), spec),
        "step_seconds": run.step_seconds,
        "db": str(warehouse_file(home)),
    }


def _bare(task: dict[str, Any]) -> dict[str, Any]:
    if task["kind"] == "duckdb":
        from benchmarks.bare_duckdb import run
    else:
        from benchmarks.bare_pandas import run
    spec = load_spec(Path(task["spec"]))
    args = (
        spec,
        Path(task["source"]),
        task["format"],
        {name: [Path(p) for p in paths] for name, paths in task["lookups"].items()},
        Path(task["out"]),
        dt.date.fromisoformat(task["start"]),
        dt.date.fromisoformat(task["end"]),
    )
    if task["kind"] == "duckdb":
        return run(*args, memory_limit=task.get("memory_limit"))
    return run(*args)


def _run(task: dict[str, Any]) -> dict[str, Any]:
    if task["kind"].startswith("partitions_"):
        from benchmarks import bare_data_layers, partitions

        side = {
            "partitions_graph": partitions.run_graph,
            "partitions_duckdb": bare_data_layers.run_bare,
        }
        return side[task["kind"]](task)
    return _graph(task) if task["kind"] == "graph" else _bare(task)


def main() -> None:
    task = json.loads(sys.argv[1])
    result = _run(task)
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result, default=str))


def measure(task: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one task in a child process; its JSON result, or an error with its stderr tail."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", json.dumps(task, default=str)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {task['kind']} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
