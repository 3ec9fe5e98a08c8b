"""Per-day results of daily checks, also inside one run over a range of days.

Daily assets backfill as one run over a partition range (`BackfillPolicy.single_run()`). Dagster
1.13.27 gives an `AssetCheckResult` a partition only from the step's single partition key
(`AssetCheckResult.to_asset_check_evaluation` uses `step_context.partition_key`), which a range
step has not: the check records one result for the window and the UI cannot say which day failed.
So:

- a daily check is partitioned like its asset (`partitions_def`, a preview parameter in
  1.13.27): a run then *plans* one evaluation per day of its range, and the UI shows the check's
  status per partition (GraphQL `AssetCheck.partitionStatuses`, null for unpartitioned checks);
- inside a range, the check reports each day's own `AssetCheckEvaluation`, with the day's
  partition and latest materialization (`record_days`). That resolves the day's planned
  evaluation; a planned day never reported ends as skipped, or execution failed if the run failed.
  The days go to the instance as one batch (`core.event_buffer`; the event `context.log_event`
  would log, through `instance.report_dagster_event`): the step's logger and event stream cost
  more per event than storing it, a range has one record per day and check, and only the run's
  event log (the UI, the sensors) reads them, so an in-process result holds only the window's;
- the check then returns its window's result as before, which Dagster stores without a partition.
  That result decides blocking, and it is what the retrain and alert sensors and the run summary
  read: a day's record carries `PART_OF_WINDOW` (`is_day_record`), so they can skip it.

In a one-day run the window's result is the day's (Dagster partitions it), so nothing extra is
logged; the day's values are merged into it instead, so every partition's record has one shape.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg

from ml_assets.core.check_targets import latest_materializations
from ml_assets.core.event_buffer import buffered_events
from ml_assets.core.partitions import daily_partitions
from ml_assets.core.spec import DatasetSpec

# Metadata of a day's record inside a range run: the window ("<start>..<end>") it belongs to.
PART_OF_WINDOW = "part_of_window"
MAX_LISTED_DAYS = 50  # failed days listed in the window's result (all are counted)
_PREVIEW = "Specifying a partitions_def on an AssetCheckSpec"

CheckContext = dg.AssetCheckExecutionContext | dg.AssetExecutionContext
R = TypeVar("R")


@dataclass(frozen=True)
class DayResult:
    """A check's verdict on one day: what it would say if the run had covered that day alone
    (where a check judges the window as a whole, `description` says how the day differs)."""

    day: dt.date
    passed: bool
    observed: float | None = None
    threshold: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None

    def values(self) -> dict[str, Any]:
        numbers = {"observed": self.observed, "threshold": self.threshold}
        return {
            **self.metadata,
            **{k: dg.MetadataValue.float(float(v)) for k, v in numbers.items() if v is not None},
        }


def window_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day of [start, end]: the partitions a range run plans a check evaluation for."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def failing_days(
    start: dt.date,
    end: dt.date,
    judge: Callable[[dt.date, dt.date], R],
    failed: Callable[[R], bool],
    whole: R | None = None,
) -> dict[dt.date, R]:
    """The days of [start, end] that fail on their own, each with its own result, found by
    halving the window. Only for checks where a window fails exactly when one of its days does
    (a count of bad rows, a worst day's rate): a clean window then costs nothing beyond the call
    the check made (`whole`), and each bad day about 2 log2(days) calls of `judge` on ever
    smaller windows, instead of one call per day (measured: `range_violations` takes 50 ms a
    day, so a year day by day would add 18 s to the check)."""
    found: dict[dt.date, R] = {}

    def visit(a: dt.date, b: dt.date, result: R) -> None:
        if not failed(result):
            return
        if a == b:
            found[a] = result
            return
        mid = a + dt.timedelta(days=(b - a).days // 2)
        visit(a, mid, judge(a, mid))
        visit(mid + dt.timedelta(days=1), b, judge(mid + dt.timedelta(days=1), b))

    visit(start, end, judge(start, end) if whole is None else whole)
    return found


def daily_check_spec(spec: DatasetSpec, name: str, **kwargs: Any) -> dg.AssetCheckSpec:
    """An `AssetCheckSpec` partitioned like the dataset's daily assets (for `check_specs=`)."""
    with _quiet_preview():
        return dg.AssetCheckSpec(name, partitions_def=daily_partitions(spec), **kwargs)


def daily_asset_check(
    spec: DatasetSpec, **kwargs: Any
) -> Callable[[Callable[..., dg.AssetCheckResult]], dg.AssetChecksDefinition]:
    """`@dg.asset_check(**kwargs)`, partitioned like the dataset's daily assets."""

    def decorate(fn: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        with _quiet_preview():
            return dg.asset_check(partitions_def=daily_partitions(spec), **kwargs)(fn)

    return decorate


def record_days(
    context: CheckContext,
    days: Sequence[DayResult],
    window_metadata: Mapping[str, Any],
    *,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    check_name: str | None = None,
) -> dict[str, Any]:
    """Log each day's result with its partition when the step covers a range; return the
    window's metadata with the failed days added (and, for one day, that day's values).

    `check_name` picks the check of a multi-asset with several; an `@asset_check` has one.
    Call it before the window's result is yielded, so that result stays the step's last word.
    """
    check = _check_spec(context, check_name)
    failed = [d.day.isoformat() for d in days if not d.passed]
    summary = {
        "failed_partitions": dg.MetadataValue.json(failed[:MAX_LISTED_DAYS]),
        "failed_partition_count": dg.MetadataValue.int(len(failed)),
    }
    if context.has_partition_key:  # Dagster partitions the window's result: it is the day's
        (day,) = days
        return {**day.values(), **window_metadata, **summary}
    planned = set(context.partition_keys)
    given = {d.day.isoformat() for d in days}
    if planned - given:
        context.log.warning(
            f"{check.key.to_user_string()}: no result for {sorted(planned - given)}"
        )
    label = f"{min(given)}..{max(given)}" if given else ""
    targets = latest_materializations(context.instance, check.key.asset_key, sorted(given))
    # One event per day and check, reported straight to the instance (not through the step's
    # logger and event stream, which cost more than the storage) and stored as one batch.
    step = context.op_execution_context.get_step_execution_context()
    with buffered_events(context.instance):
        for d in days:
            partition = d.day.isoformat()
            evaluation = dg.AssetCheckEvaluation(
                asset_key=check.key.asset_key,
                check_name=check.key.name,
                passed=d.passed,
                metadata={**d.values(), PART_OF_WINDOW: dg.MetadataValue.text(label)},
                target_materialization_data=targets.get(partition),
                severity=severity,
                description=d.description,
                blocking=check.blocking,
                partition=partition,
            )
            context.instance.report_dagster_event(
                _check_event(step, evaluation), step.run_id, logging.DEBUG
            )
    return {**window_metadata, **summary}


def _check_event(step: Any, evaluation: dg.AssetCheckEvaluation) -> dg.DagsterEvent:
    """The event `context.log_event(evaluation)` would log (`DagsterEvent.asset_check_evaluation`)."""
    verdict = "passed." if evaluation.passed else "did not pass."
    about = f" Description: '{evaluation.description}'" if evaluation.description else ""
    return dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
        job_name=step.job_name,
        step_handle=step.step.handle,
        node_handle=step.step.node_handle,
        step_kind_value=step.step.kind.value,
        logging_tags=step.event_tags,
        event_specific_data=evaluation,
        message=f"Asset check '{evaluation.check_name}' on "
        f"'{evaluation.asset_key.to_user_string()}' {verdict}{about}",
        pid=os.getpid(),
    )


def is_day_record(evaluation: dg.AssetCheckEvaluation | None) -> bool:
    """True for one day's record logged inside a range run: a detail of the window's result,
    which is the one that counts (blocking, retrain and alert triggers, the run summary)."""
    return evaluation is not None and PART_OF_WINDOW in evaluation.metadata


def _check_spec(context: CheckContext, name: str | None) -> dg.AssetCheckSpec:
    specs = list(context.op_execution_context.assets_def.check_specs)
    matching = [s for s in specs if name is None or s.name == name]
    if len(matching) != 1:
        raise dg.DagsterInvariantViolationError(
            f"record_days: expected one check named {name!r}, found {[s.name for s in specs]}"
        )
    return matching[0]


class _quiet_preview(warnings.catch_warnings):
    """Partitioned checks are a preview in dagster 1.13.27 and warn when declared; the project
    loads with zero warnings, so this one (and only this one) is silenced where we declare them."""

    def __enter__(self) -> None:
        super().__enter__()
        warnings.filterwarnings("ignore", message=_PREVIEW, category=dg.PreviewWarning)
