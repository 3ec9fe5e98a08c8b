"""The main job, headless: materialize every dataset's graph over all its days, print a summary.

`make run` calls this. Runs go to the Dagster instance under DAGSTER_HOME, so everything this
did is visible afterwards in `make dev`.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import dagster as dg

from ml_assets import settings
from ml_assets.automation.landing import RANGE_END, RANGE_START
from ml_assets.definitions import build_defs
from ml_assets.factory import daily_layers_job_name
from ml_assets.specs import DatasetSpec, load_specs


def partition_range(spec: DatasetSpec) -> tuple[str, str]:
    end = spec.partitions.end or (dt.date.today() - dt.timedelta(days=1))
    return spec.partitions.start.isoformat(), end.isoformat()


def run_daily_layers(
    defs: dg.Definitions, spec: DatasetSpec, instance: dg.DagsterInstance, start: str, end: str
) -> dg.ExecuteInProcessResult:
    """One run over the whole range (single-run backfill), as the UI's backfill would launch."""
    job = defs.resolve_job_def(daily_layers_job_name(spec))
    return job.execute_in_process(
        instance=instance, tags={RANGE_START: start, RANGE_END: end}, raise_on_error=False
    )


def layer_rows(result: dg.ExecuteInProcessResult) -> dict[str, tuple[int, int]]:
    """Per asset: partitions materialized and the rows its materializations reported."""
    seen: dict[str, tuple[int, int]] = {}
    reported: set[tuple[str, str]] = set()
    for event in result.get_asset_materialization_events():
        m = event.materialization
        key = m.asset_key.to_user_string()
        parts, rows = seen.get(key, (0, 0))
        # A single-run range reports one result per partition with the window's total: count once.
        run_total = m.metadata.get("dagster/row_count")
        start = m.metadata.get("partition_start")
        window_id = (key, start.value if start else m.partition or "")
        if run_total and window_id not in reported:
            rows += run_total.value
            reported.add(window_id)
        seen[key] = (parts + 1, rows)
    return seen


def check_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    lines = []
    for ev in result.get_asset_check_evaluations():
        status = "PASS" if ev.passed else f"FAIL({ev.severity.value})"
        lines.append(f"    {ev.asset_key.to_user_string():<22} {ev.check_name:<20} {status}")
    return lines


def main() -> int:
    specs = load_specs(settings.specs_dir())
    defs = build_defs(specs)
    ok = True
    with dg.DagsterInstance.get() as instance:
        for spec in specs:
            start, end = partition_range(spec)
            t0 = time.perf_counter()
            result = run_daily_layers(defs, spec, instance, start, end)
            took = time.perf_counter() - t0
            ok &= result.success
            print(
                f"\n== {spec.name}: {start} .. {end}  ({'ok' if result.success else 'FAILED'}, {took:.1f}s)"
            )
            print(f"  run id: {result.run_id}")
            for key, (partitions, rows) in layer_rows(result).items():
                print(f"  {key:<22} {rows:>10,} rows over {partitions} partition(s)")
            print("  checks:")
            print("\n".join(check_lines(result)))
    print(f"\nwarehouse: {settings.warehouse_path()}")
    print(f"reports:   {settings.reports_dir()}")
    print(f"dagster:   {dg.DagsterInstance.get().root_directory}  (open with `make dev`)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
