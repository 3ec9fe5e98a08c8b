"""Daily partitions from a spec, and the date window a run or check covers."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ml_assets.core.spec import DatasetSpec


def daily_partitions(spec: DatasetSpec) -> dg.DailyPartitionsDefinition:
    end = spec.partitions.end
    return dg.DailyPartitionsDefinition(
        start_date=spec.partitions.start.isoformat(),
        # DailyPartitionsDefinition's end is exclusive; the spec's is the last day.
        end_date=(end + dt.timedelta(days=1)).isoformat() if end else None,
    )


def window(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of the partitions this step covers: one day or a range."""
    tw = context.partition_time_window
    return tw.start.date(), (tw.end - dt.timedelta(days=1)).date()


def window_metadata(start: dt.date, end: dt.date) -> dict[str, dg.MetadataValue]:
    return {
        "partition_start": dg.MetadataValue.text(start.isoformat()),
        "partition_end": dg.MetadataValue.text(end.isoformat()),
        "partition_days": dg.MetadataValue.int((end - start).days + 1),
    }
