"""`make bench`: measure every figure against its baseline, write results.json and results.md.

    python -m benchmarks.run              # the full set (about 20-30 minutes on 2 cores)
    python -m benchmarks.run --quick      # smoke mode: 7 days at 1x, one repeat, 20k drift rows
    python -m benchmarks.run --only drift,incremental_day --repeats 5

Every figure is a median over repeated runs with its baseline measured in the same invocation, so
a ratio never compares numbers from different machines or moments. Timings are noisy: the machine
facts (including load average before and after) are in the JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks.harness import FIGURES, Bench, machine_info

RESULTS = Path(__file__).resolve().parent / "results"
# Modules whose import registers figures (with @figure). Add yours here.
FIGURE_MODULES = (
    "benchmarks.figures",
    "benchmarks.model_figures",
    "benchmarks.partitions",
    "benchmarks.streaming",
)
# Full runs only (`make bench`, `--only`): scale-out and serving figures (servers and load for
# tens of seconds each), absent from --quick's figure list.
FULL_RUN_MODULES = ("benchmarks.multiwriter", "benchmarks.serving")
# Figures of issue 6 that no module registers yet: listed in the results as not measured.
PLANNED: dict[str, str] = {}
# Output order (issue 6's numbering); figures registered under other names follow.
ORDER = (
    "backfill_1x",
    "backfill_10x",
    "incremental_day",
    "drift",
    "training_overhead",
    "scoring_throughput",
    "peak_memory_10x",
    "orchestration_floor",
    "many_small_partitions",
)


def settings(args: argparse.Namespace, workdir: Path) -> Bench:
    if args.quick:
        return Bench(
            workdir=workdir,
            repeats=args.repeats or 1,
            repeats_10x=args.repeats_10x or 1,
            quick=True,
            days=args.days or 7,
            drift_rows=args.drift_rows or 20_000,
        )
    return Bench(
        workdir=workdir,
        repeats=args.repeats or 3,
        repeats_10x=args.repeats_10x or 1,
        days=args.days or 365,
        drift_rows=args.drift_rows or 1_000_000,
    )


def run_figures(bench: Bench, only: set[str] | None) -> dict[str, dict[str, Any]]:
    for module in FIGURE_MODULES + (() if bench.quick else FULL_RUN_MODULES):
        importlib.import_module(module)
    out: dict[str, dict[str, Any]] = {}
    for name, reg in FIGURES.items():
        if only is not None and name not in only:
            continue
        if bench.quick and not reg.quick:
            out[name] = {"title": reg.title, "status": "skipped in --quick mode"}
            continue
        bench.log(f"{reg.title} ...")
        start = time.perf_counter()
        try:
            record = {"title": reg.title, "status": "measured", **reg.fn(bench).to_json()}
        except Exception as exc:
            bench.log(traceback.format_exc())
            record = {
                "title": reg.title,
                "status": "error",
                "error": f"{type(exc).__name__}: {exc}",
            }
        record["figure_wall_s"] = round(time.perf_counter() - start, 2)
        bench.log(f"  done in {record['figure_wall_s']:.1f}s: {_summary(record)}")
        out[name] = record
    for name, title in PLANNED.items():
        if name not in out and (only is None or name in only):
            out[name] = {"title": title, "status": "not measured yet (no figure registered)"}
    order = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def _num(value: float, unit: str) -> str:
    if unit == "GiB":
        return f"{value:.2f} GiB"
    if unit == "s":
        return f"{value:.3g} s" if value < 10 else f"{value:.1f} s"
    return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"


def _summary(record: dict[str, Any]) -> str:
    if record.get("status") != "measured":
        return record.get("error") or record.get("status", "")
    ratio = record.get("ratio")
    met = {True: "met", False: "MISSED", None: "no goal"}[record["meets_goal"]]
    ratio_text = f", ratio {ratio:.3g}" if ratio is not None else ""
    return f"{_num(record['median_s'], record['unit'])}{ratio_text} ({met})"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"{results['started']} · {m['cpu_count']} x {m['cpu_model']} · {m['memory_gib']} GiB · "
        f"Python {m['python']} · load average at start {m['load_average'][0]:.2f}, "
        f"at end {results['load_average_end'][0]:.2f} · total {results['total_wall_s']:.0f} s"
        + (
            " · QUICK MODE (smoke test, not representative)" if results["settings"]["quick"] else ""
        ),
        "",
        "Medians over repeated runs; each ratio's two sides were measured in this same run.",
        "",
        "| figure | ours | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for record in results["figures"].values():
        title = record["title"]
        if record.get("status") != "measured":
            reason = record.get("error") or record.get("status")
            lines.append(f"| {title} | — | — | — | — | {reason} |")
            continue
        unit = record["unit"]
        base = record["baseline"]
        baselines = [f"{base['name']}: {_num(base['median_s'], unit)}"] if base else []
        ratios = [f"{record['ratio']:.3g} ({record['ratio_label']})"] if record["ratio"] else []
        for other in record.get("other_baselines", []):
            baselines.append(f"{other['name']}: {_num(other['median_s'], unit)}")
            ratios.append(f"{other['ratio']:.3g} vs {other['name']}")
        met = {True: "yes", False: "**no**", None: "—"}[record["meets_goal"]]
        lines.append(
            f"| {title} | {_num(record['median_s'], unit)} | {'; '.join(baselines)} | "
            f"{'; '.join(ratios)} | {record['goal']} | {met} |"
        )
        if record.get("notes"):
            notes.append(f"- **{title}**: {record['notes']}")
    return "\n".join([*lines, "", *notes, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny data, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure (3)")
    parser.add_argument(
        "--repeats-10x", type=int, default=None, help="repeats of the 10x backfill (1)"
    )
    parser.add_argument("--days", type=int, default=None, help="backfill length (365; quick 7)")
    parser.add_argument("--drift-rows", type=int, default=None, help="rows per side (1M)")
    parser.add_argument("--only", default=None, help="comma-separated figure names")
    parser.add_argument(
        "--duckdb-memory-limit",
        default=None,
        help="DuckDB memory_limit for the graph's and the bare DuckDB backfills, e.g. 1536MB",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results.* go")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch (default: a temp dir)")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ml_assets_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = settings(args, workdir)
    bench.duckdb_memory_limit = args.duckdb_memory_limit

    def log(message: str) -> None:
        print(message, flush=True)

    bench.log = log
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    machine = machine_info()
    log(f"benchmarks: workdir {workdir}, load average {machine['load_average']}")
    try:
        figures = run_figures(bench, set(args.only.split(",")) if args.only else None)
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - t0
    results = {
        "machine": machine,
        "started": started.isoformat(timespec="seconds"),
        "total_wall_s": round(total, 1),
        "load_average_end": list(os.getloadavg()),
        "settings": {
            "quick": bench.quick,
            "repeats": bench.repeats,
            "repeats_10x": bench.repeats_10x,
            "repeats_note": (
                "the 10x backfill (about 7 minutes for its three sides) runs `repeats_10x` times, "
                "fewer than the other figures, to keep `make bench` under 30 minutes on 2 cores; "
                "Evidently runs once (about 80 s at 1M rows)"
            ),
            "days": bench.days,
            "drift_rows": bench.drift_rows,
            "duckdb_memory_limit": bench.duckdb_memory_limit,
        },
        "figures": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    log("")
    log(markdown(results))
    log(f"wrote {args.out / 'results.json'} and results.md; total wall time {total:.0f} s")
    failed = [
        name
        for name, r in figures.items()
        if r.get("status") == "error" or r.get("details", {}).get("verified") is False
    ]
    if failed:
        log(f"FAILED (error or baseline mismatch): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
