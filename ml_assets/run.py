"""The main job, headless: the whole graph for every dataset, then a summary.

`make run` calls this. For each dataset: one run of the data layers over its whole history, then,
with model layers, the replay of its months (`ml_assets.replay`). Runs go to the instance under
DAGSTER_HOME, so everything is visible afterwards in `make dev`.

The console gets one line per stage with its time as it ends (a live status line on a terminal,
`ml_assets.console`), then per dataset the rows per layer, every check result and the model
decisions (`ml_assets.run_report`). The runs' own logs stay in the Dagster instance (the UI); the
libraries' and sensors' notes go to `<DAGSTER_HOME>/logs/run.log`. A failed run prints its error,
and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from threadpoolctl import threadpool_limits

from ml_assets import instance_health, mlflow_orphans, settings
from ml_assets.console import Console, library_logs_to
from ml_assets.core.spec import DatasetSpec, load_specs
from ml_assets.definitions import build_defs
from ml_assets.replay import (  # noqa: F401  (re-exported: the pieces tests and scripts drive)
    QUIET,
    _execute,
    evaluate_sensor,
    replay,
    replay_plan,
    run_range,
    train,
    training_outcome,
)
from ml_assets.run_report import (
    DatasetReport,
    check_lines,
    decision_lines,
    layer_rows,
    monthly_lines,
)

# Loggers whose INFO lines are progress notes of libraries (MLflow's store setup, alembic's
# migrations, Dagster's sensor and instance notes): kept at WARNING on the console.
CHATTY = ("mlflow", "alembic", "dagster", "urllib3", "httpx", "matplotlib", "numexpr")


def partition_range(spec: DatasetSpec) -> tuple[dt.date, dt.date]:
    end = spec.partitions.end or (dt.date.today() - dt.timedelta(days=1))
    return spec.partitions.start, end


def run_dataset(
    defs: dg.Definitions,
    spec: DatasetSpec,
    instance: dg.DagsterInstance,
    console: Console,
    replay_months: int | None = None,
) -> bool:
    """Every stage of one dataset, its stage lines as they end, then its summary."""
    first, last = partition_range(spec)
    report = DatasetReport()
    began = time.perf_counter()
    console.line(f"\n== {spec.name}: {first} .. {last} ({(last - first).days + 1} days)")
    started = time.perf_counter()
    job = spec.names.job("daily_layers")
    data = run_range(defs, job, instance, first, last, console=console, label="data layers")
    ok = data.success
    report.rows = layer_rows(data)
    report.add_checks(data, "data layers")
    report.add_failures(data, "data layers")
    fired = [f"{a.split('/')[-1]}:{c}" for (a, c), o in report.checks.items() if not o[-1].passed]
    outcome = "ok" if ok else "FAILED (see ERRORS below)"
    if fired:
        outcome += f"; {len(fired)} check(s) fired: {', '.join(fired)}"
    console.stage("data layers", f"{first}..{last}", outcome, time.perf_counter() - started)
    if ok and spec.has_model_layers:
        limit = replay_months or spec.replay.months
        replayed, _ = replay(
            defs, spec, instance, first, last, console=console, report=report, limit=limit
        )
        ok &= replayed
    if ok and spec.features is not None:
        ok &= publish_online(defs, spec, instance, console, report)
    console.stage("total", "", "", time.perf_counter() - began)
    print_summary(console, spec, report, data.run_id)
    return ok


def publish_online(
    defs: dg.Definitions,
    spec: DatasetSpec,
    instance: dg.DagsterInstance,
    console: Console,
    report: DatasetReport,
) -> bool:
    """The online snapshot as of the newest features day, so `make serve` can start right after
    (one `<ds>__online` run: a few seconds; published only if parity holds)."""
    started = time.perf_counter()
    job = defs.resolve_job_def(spec.names.job("online"))
    result = _execute(job, instance, console, "online snapshot", run_config=QUIET)
    report.add_checks(result, "online snapshot")
    report.add_failures(result, "online snapshot")
    published = result.success and bool(
        result.asset_materializations_for_node(spec.names.op("online_features"))
    )
    outcome = "published" if published else "NOT published (parity failed or run failed)"
    console.stage("online snapshot", "", outcome, time.perf_counter() - started)
    return published


def print_summary(console: Console, spec: DatasetSpec, report: DatasetReport, run_id: str) -> None:
    console.line(f"\n  rows per layer (data layers run {run_id}):")
    for key, (partitions, rows) in report.rows.items():
        console.line(f"    {key:<26} {rows:>10,} rows over {partitions} partition(s)")
    console.line("\n  checks (one result per run and check; per-day results are in the UI):")
    for line in check_lines(report):
        console.line(line)
    if spec.has_model_layers:
        console.line(f"\n  replayed: {report.replayed or 'nothing (the data layers failed)'}")
        console.line("\n  drift and performance per month:")
        for line in monthly_lines(spec, spec.partitions.start):
            console.line(line)
        console.line("\n  model decisions (governance.model_decisions):")
        for line in decision_lines(spec, report.first_decision_id):
            console.line(line)
        console.line(f"\n  model card: {settings.reports_dir() / spec.name / 'model_card.md'}")
    if report.failures:
        console.line("\n  ERRORS:")
        for failure in report.failures:
            console.line(f"    {failure}")
            print(f"error: {spec.name}: {failure}", file=sys.stderr)


def import_monitoring_libraries(specs: Sequence[DatasetSpec]) -> None:
    """Import Evidently before any run when a dataset will be monitored (the first drift report
    imports it anyway, so this costs nothing).

    Why before: imported only after MLflow had logged a model in the same process (a replay's
    first training, then its first monitoring), DuckDB's own module-level objects (its 27 type
    constants, `ExplainType`, their methods) outlive the interpreter's teardown, and nanobind
    prints `nanobind: leaked 27 instances ...` at exit. Reproduced with two jobs in one process:
    `model_candidate` then `import evidently` leaks, the reverse order does not, and neither job
    alone does. Nothing of ours holds DuckDB at exit: no connection, relation, result,
    DuckDB-backed array or DataFrame is alive then (checked with `gc` in an atexit hook).
    """
    if any(s.has_model_layers for s in specs):
        import evidently.presets  # noqa: F401


def quiet_libraries() -> None:
    """Keep the console to the summary; the run logs stay in the Dagster instance."""
    # MLflow's artifact download bars (model cards read the champion's evaluation record).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in CHATTY:  # until the run log is open (see `main`)
        logging.getLogger(name).setLevel(logging.WARNING)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ml_assets.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--replay-months",
        type=int,
        default=None,
        metavar="N",
        help="replay only the newest N months of each dataset (default: the spec's replay.months,"
        " else the whole history)",
    )
    args = parser.parse_args(list(argv))
    if args.replay_months is not None and args.replay_months < 1:
        parser.error("--replay-months must be at least 1")
    return args


def main(argv: Sequence[str] = ()) -> int:
    """`make run`; `argv` are the options after `python -m ml_assets.run`."""
    args = parse_args(argv)
    quiet_libraries()
    # One BLAS thread, as XGBoost already has one (layers/train/families.py): on the shared
    # 2-core box OpenBLAS's second thread made a logistic-regression fit 1.9x slower (3.0 s vs
    # 1.6 s on a 56k-row window, identical coefficients) and busy-waits beside DuckDB.
    threadpool_limits(limits=1, user_api="blas")
    specs = load_specs(settings.specs_dir())
    if not specs:
        print(f"no dataset specs (*/defs.yaml) in {settings.specs_dir()}", file=sys.stderr)
        return 1
    import_monitoring_libraries(specs)
    defs = build_defs(specs)
    console = Console()
    console.line(
        f"ml_assets: {len(specs)} dataset(s) from {settings.specs_dir()}: "
        + ", ".join(s.name for s in specs)
    )
    ok = True
    with contextlib.ExitStack() as stack:
        instance = stack.enter_context(dg.DagsterInstance.get())
        home = instance.root_directory
        run_log = stack.enter_context(library_logs_to(Path(home) / "logs" / "run.log", CHATTY))
        instance_health.prepare_headless(instance)  # dead runs' slots, bounded wait
        mlflow_orphans.end_orphaned_runs(defs.resources["mlflow"], instance)  # killed trainings
        for spec in specs:
            ok &= run_dataset(defs, spec, instance, console, args.replay_months)
    console.line(f"\nwarehouse: {settings.warehouse_path()}")
    console.line(f"reports:   {settings.reports_dir()}")
    console.line(f"mlflow:    {settings.data_dir() / 'mlflow'}  (open with `make mlflow-ui`)")
    console.line(f"dagster:   {home}  (open with `make dev`)")
    console.line(f"log:       {run_log}  (libraries' and sensors' notes)")
    if not ok:
        console.line("\nFAILED: see ERRORS above (and the failed runs in `make dev`)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
