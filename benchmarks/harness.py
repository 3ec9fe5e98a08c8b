"""What every figure shares: its record, the registry figures join, timing and machine facts.

A figure is a function `(Bench) -> Figure` registered with `@figure(name)`; `benchmarks.run`
calls every registered figure in order and writes their records to results.json/results.md.
Adding one (e.g. the training-overhead figure) is a decorated function in a module that
`benchmarks.run` imports; nothing else changes.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGES = ("duckdb", "dagster", "pandas", "numpy", "pyarrow", "xgboost", "evidently")


@dataclass
class Measure:
    """One measured thing: its runs (seconds), their median, and what else it reported."""

    name: str
    runs: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "median_s": round(self.median, 4),
            "runs": [round(r, 4) for r in self.runs],
            **self.extra,
        }


@dataclass
class Figure:
    """One row of the results: ours against a baseline from the same run, and the goal."""

    ours: Measure
    baseline: Measure | None
    goal: str
    meets_goal: bool | None  # None: no goal, or the figure could not judge it
    notes: str = ""
    ratio: float | None = None  # ours / baseline unless the figure says otherwise
    ratio_label: str = "ours / baseline"
    other_baselines: list[Measure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    unit: str = "s"

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline is not None and self.baseline.median > 0:
            self.ratio = self.ours.median / self.baseline.median

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "unit": self.unit,
            "median_s": round(self.ours.median, 4),
            "runs": [round(r, 4) for r in self.ours.runs],
            "ours": self.ours.to_json(),
            "baseline": self.baseline.to_json() if self.baseline else None,
            "ratio": round(self.ratio, 4) if self.ratio is not None else None,
            "ratio_label": self.ratio_label,
            "goal": self.goal,
            "meets_goal": self.meets_goal,
            "notes": self.notes,
        }
        if self.other_baselines:
            out["other_baselines"] = [
                {
                    **b.to_json(),
                    "ratio": round(self.ours.median / b.median, 4) if b.median else None,
                }
                for b in self.other_baselines
            ]
        if self.details:
            out["details"] = self.details
        return out


@dataclass
class Bench:
    """Settings and scratch space shared by the figures of one harness run."""

    workdir: Path
    repeats: int = 3
    repeats_10x: int = 1
    quick: bool = False
    days: int = 365  # backfill length from the first partition (quick mode: 7)
    drift_rows: int = 1_000_000
    duckdb_memory_limit: str | None = None  # applied to the graph's and the bare DuckDB runs
    log: Callable[[str], None] = print
    cache: dict[str, Any] = field(default_factory=dict)

    def scratch(self, name: str) -> Path:
        """A new, empty folder under the workdir for one measurement."""
        base = self.workdir / "scratch"
        base.mkdir(parents=True, exist_ok=True)
        i = 0
        while (base / f"{name}-{i}").exists():
            i += 1
        path = base / f"{name}-{i}"
        path.mkdir()
        return path


FigureFn = Callable[[Bench], Figure]


@dataclass(frozen=True)
class Registered:
    name: str
    fn: FigureFn
    title: str
    quick: bool  # runs in --quick mode too


FIGURES: dict[str, Registered] = {}


def figure(name: str, title: str, quick: bool = True) -> Callable[[FigureFn], FigureFn]:
    """Register a figure; `benchmarks.run` runs registered figures in registration order."""

    def register(fn: FigureFn) -> FigureFn:
        if name in FIGURES:
            raise ValueError(f"figure '{name}' is registered twice")
        FIGURES[name] = Registered(name, fn, title, quick)
        return fn

    return register


@contextmanager
def timer() -> Iterator[list[float]]:
    """`with timer() as t: ...` then `t[0]` is the elapsed wall time in seconds."""
    out: list[float] = []
    start = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - start)


def peak_rss_bytes() -> int | None:
    """This process's peak resident set (VmHWM), which includes DuckDB's native memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    """Facts that make timings comparable (or explain why they are not): load is one of them."""
    versions = {}
    for pkg in PACKAGES:
        # A module can come from another distribution (`xgboost` from the CPU-only `xgboost-cpu`).
        for dist in (pkg, f"{pkg}-cpu"):
            try:
                versions[pkg] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                versions[pkg] = None
    memory = _memory_bytes()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(memory / 2**30, 2) if memory else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "load_average": list(os.getloadavg()),
    }
