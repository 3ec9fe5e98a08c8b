"""The main job, headless: the whole graph for every dataset, then a summary.

`make run` calls this. For a dataset with model layers it replays the year as it would happen
live: backfill the data layers, train on the first `training.window_days` days, then month by
month score and monitor the new days and let the retrain sensor decide (from the check results
in the Dagster instance, exactly as the sensor daemon would) whether to retrain. Runs go to the
instance under DAGSTER_HOME, so everything is visible afterwards in `make dev`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import time

import dagster as dg
import duckdb

from ml_assets import instance_health, settings
from ml_assets.core.checks import is_day_record
from ml_assets.core.spec import DatasetSpec, load_specs
from ml_assets.core.sql import table_exists
from ml_assets.core.tags import RANGE_END, RANGE_START, TRIGGER_TAG
from ml_assets.definitions import build_defs

# Steps log to the Dagster instance (see them in the UI); the console keeps to the summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def partition_range(spec: DatasetSpec) -> tuple[dt.date, dt.date]:
    end = spec.partitions.end or (dt.date.today() - dt.timedelta(days=1))
    return spec.partitions.start, end


def months(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    out, day = [], first
    while day <= last:
        nxt = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        out.append((day, min(last, nxt - dt.timedelta(days=1))))
        day = nxt
    return out


def run_range(
    defs: dg.Definitions, job: str, instance: dg.DagsterInstance, start: dt.date, end: dt.date
) -> dg.ExecuteInProcessResult:
    """One run over a range of days (a single-run backfill), as the UI's backfill launches it."""
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        run_config=QUIET,
        tags={RANGE_START: start.isoformat(), RANGE_END: end.isoformat()},
        raise_on_error=False,
    )


def train(
    defs: dg.Definitions,
    spec: DatasetSpec,
    instance: dg.DagsterInstance,
    as_of: dt.date,
    tags: dict[str, str],
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    config = run_config or {
        "ops": {spec.names.op("training_set"): {"config": {"as_of": as_of.isoformat()}}}
    }
    return defs.resolve_job_def(spec.names.job("train")).execute_in_process(
        instance=instance, run_config={**QUIET, **config}, tags=tags, raise_on_error=False
    )


def training_outcome(result: dg.ExecuteInProcessResult) -> tuple[bool, str]:
    """(ok, text): a candidate rejected by its gates is a decision in a successful run."""
    if not result.success:
        return False, "FAILED"
    promoted = any(
        e.materialization.asset_key.path[-1] == "champion_model"
        for e in result.get_asset_materialization_events()
    )
    if promoted:
        return True, "promoted"
    failed = [
        e.check_name
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] == "model_evaluation"
        and not e.passed
        and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    return True, f"rejected by {failed}"


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
        if is_day_record(ev):
            continue
        status = "PASS" if ev.passed else f"FAIL({ev.severity.value})"
        note = f"  {ev.metadata['summary'].value}" if "summary" in ev.metadata else ""
        lines.append(f"    {ev.asset_key.to_user_string():<26} {ev.check_name:<28} {status}{note}")
    return lines


def decision_lines(spec: DatasetSpec) -> list[str]:
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        rows = conn.execute(
            """SELECT decided_at, decision, candidate_version, previous_champion_version,
                      new_champion_version, "trigger", reason
               FROM governance.model_decisions WHERE dataset = ? ORDER BY decision_id""",
            [spec.name],
        ).fetchall()
    return [
        f"    {at:%H:%M:%S} {decision:<9} v{cand} (champion {prev or '-'} -> {new or '-'})"
        f" trigger={trigger}: {reason}"
        for at, decision, cand, prev, new, trigger, reason in rows
    ]


def monthly_lines(spec: DatasetSpec, first: dt.date) -> list[str]:
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        if not (
            table_exists(conn, spec.name, "drift") and table_exists(conn, spec.name, "performance")
        ):
            return ["    (nothing monitored)"]
        rows = conn.execute(
            f"""WITH d AS (
                    SELECT date_trunc('month', day) AS m, day, any_value(share_drifted) AS share,
                           bool_or(drifted) FILTER (WHERE is_prediction) AS score_drift
                    FROM "{spec.name}".drift WHERE day >= $first GROUP BY ALL),
                dm AS (SELECT m, avg(share) AS share, max(share) AS worst,
                              count(*) FILTER (WHERE score_drift) AS score_drift_days FROM d GROUP BY m),
                p AS (SELECT date_trunc('month', day) AS m, any_value(metric) AS metric,
                             avg(trailing_value) AS trailing, min(trailing_value) AS low,
                             min(bound) AS bound,
                             count(*) FILTER (WHERE degraded) AS degraded_days,
                             string_agg(DISTINCT array_to_string(model_versions, ','), ',') AS versions
                      FROM "{spec.name}".performance WHERE day >= $first GROUP BY ALL)
                SELECT strftime(dm.m, '%Y-%m'), dm.share, dm.worst, dm.score_drift_days, p.metric,
                       p.trailing, p.low, p.bound, p.degraded_days, p.versions
                FROM dm JOIN p USING (m) ORDER BY 1""",
            {"first": first},
        ).fetchall()
    lines = [
        "    month    drift share (mean/max)  score-drift days  "
        "trailing metric (mean/min) vs bound (min)  degraded days  model versions"
    ]
    for month, share, worst, sdays, metric, trailing, low, bound, degraded, versions in rows:
        lines.append(
            f"    {month}  {share:>6.0%} / {worst:>4.0%}        {sdays:>3}            "
            f"{metric} {trailing:.3f} / {low:.3f} vs {bound or float('nan'):.3f}         "
            f"{degraded:>3}          v{versions}"
        )
    return lines


def replay(
    defs: dg.Definitions,
    spec: DatasetSpec,
    instance: dg.DagsterInstance,
    first: dt.date,
    last: dt.date,
) -> tuple[bool, list[str]]:
    """Train on the first window, then score and monitor month by month, retraining on triggers."""
    ok, notes = True, []
    as_of = first + dt.timedelta(days=spec.training.window_days - 1)
    trained_ok, outcome = training_outcome(
        train(defs, spec, instance, as_of, {TRIGGER_TAG: "initial"})
    )
    ok &= trained_ok
    notes.append(f"  initial training up to {as_of}: {outcome}")
    if outcome != "promoted":
        notes.append("  no champion, so nothing to score or monitor: see the decision below")
        return ok, notes
    sensor = defs.resolve_sensor_def(spec.names.sensor("retrain"))
    cursor = None
    for m_start, m_end in months(as_of + dt.timedelta(days=1), last):
        t0 = time.perf_counter()
        monitored = run_range(defs, spec.names.job("monitor"), instance, m_start, m_end)
        ok &= monitored.success
        failed = [
            f"{e.asset_key.path[-1]}:{e.check_name}"
            for e in monitored.get_asset_check_evaluations()
            if not e.passed and not is_day_record(e)
        ]
        tick = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
        )
        cursor = tick.cursor
        line = f"  {m_start:%Y-%m}: monitored in {time.perf_counter() - t0:.0f}s; failed checks {failed or '-'}"
        for request in tick.run_requests:
            retrained = train(defs, spec, instance, m_end, dict(request.tags), request.run_config)
            retrained_ok, outcome = training_outcome(retrained)
            ok &= retrained_ok
            line += f"; retrain ({request.tags[TRIGGER_TAG]}): {outcome}"
        notes.append(line)
    return ok, notes


def main() -> int:
    # The console keeps to the summary: MLflow's artifact download bars (model cards read the
    # champion's evaluation record) would interleave with it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow's store-setup INFO lines and the replay's sensor INFO notes (the summary states each
    # decision): warnings and errors still print. The runs' own logs stay in the Dagster instance.
    for name in ("mlflow", "alembic", "dagster"):
        logging.getLogger(name).setLevel(logging.WARNING)
    specs = load_specs(settings.specs_dir())
    if not specs:
        print(f"no dataset specs (*/defs.yaml) in {settings.specs_dir()}", file=sys.stderr)
        return 1
    defs = build_defs(specs)
    ok = True
    with dg.DagsterInstance.get() as instance:
        instance_health.prepare_headless(instance)  # dead runs' slots, bounded wait
        for spec in specs:
            first, last = partition_range(spec)
            t0 = time.perf_counter()
            result = run_range(defs, spec.names.job("daily_layers"), instance, first, last)
            ok &= result.success
            print(f"\n== {spec.name}: {first} .. {last}")
            print(
                f"  data layers: {'ok' if result.success else 'FAILED'} in "
                f"{time.perf_counter() - t0:.1f}s (run {result.run_id})"
            )
            for key, (partitions, rows) in layer_rows(result).items():
                print(f"  {key:<26} {rows:>10,} rows over {partitions} partition(s)")
            print("  checks:")
            print("\n".join(check_lines(result)))
            if not (result.success and spec.has_model_layers):
                continue
            t0 = time.perf_counter()
            replayed, notes = replay(defs, spec, instance, first, last)
            ok &= replayed
            print(
                f"\n  model replay: {'ok' if replayed else 'FAILED'} in {time.perf_counter() - t0:.0f}s"
            )
            print("\n".join(notes))
            print("\n  drift and performance per month:")
            print("\n".join(monthly_lines(spec, first)))
            print("\n  model decisions (governance.model_decisions):")
            print("\n".join(decision_lines(spec)))
            print(f"\n  model card: {settings.reports_dir() / spec.name / 'model_card.md'}")
    print(f"\nwarehouse: {settings.warehouse_path()}")
    print(f"reports:   {settings.reports_dir()}")
    print(f"mlflow:    {settings.data_dir() / 'mlflow'}  (open with `make mlflow-ui`)")
    print(f"dagster:   {instance.root_directory}  (open with `make dev`)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
