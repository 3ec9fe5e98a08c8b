"""Checks on `raw`: source rows accounted for, row-count anomaly, and freshness.

`row_count_anomaly` judges each day, so it is partitioned and reports every day of a range run
(`ml_assets.core.checks`); `freshness` judges the table against today, not a day, and stays one
result per run. So does `source_rows_accounted`: its unit is a source file, which usually spans
many days (the bundled flights file is the whole year), and a row with no day belongs to none.
"""

import datetime as dt

import dagster as dg

from ml_assets.core.checks import DayResult, daily_asset_check, record_days, window_days
from ml_assets.core.partitions import window
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.ingest.logic import (
    FileAccount,
    expected_newest_day,
    newest_raw_day,
    row_count_anomalies,
    source_accounts,
)
from ml_assets.layers.ingest.stream import StreamAccount, stream_accounts
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def build_raw_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    q = spec.quality

    @daily_asset_check(
        spec,
        asset=spec.names.key("raw"),
        name="row_count_anomaly",
        pool=warehouse_pool(),
        description=(
            f"Each day's row count stays within {q.row_count_min_ratio}x..{q.row_count_max_ratio}x "
            f"of the median of the {q.trailing_days} days before it."
        ),
    )
    def row_count_anomaly(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        start, end = window(context)
        with warehouse.get_connection() as conn:
            anomalies, judged = row_count_anomalies(conn, spec, start, end)
        odd = {a.day: a for a in anomalies}
        days = [
            DayResult(
                d,
                False,
                observed=odd[d].ratio,
                metadata={"rows": odd[d].rows, "trailing_median": odd[d].trailing_median},
            )
            if d in odd
            else DayResult(d, True)
            for d in window_days(start, end)
        ]
        severity = dg.AssetCheckSeverity.WARN
        window_metadata = {
            "days_judged": judged,
            "anomalous_days": len(anomalies),
            "anomalies": dg.MetadataValue.json(
                [
                    {
                        "day": a.day.isoformat(),
                        "rows": a.rows,
                        "trailing_median": a.trailing_median,
                        "ratio": a.ratio,
                    }
                    for a in anomalies[:20]
                ]
            ),
        }
        return dg.AssetCheckResult(
            passed=not anomalies,
            severity=severity,
            metadata=record_days(context, days, window_metadata, severity=severity),
        )

    @dg.asset_check(
        asset=spec.names.key("raw"),
        name="freshness",
        pool=warehouse_pool(),
        description=(
            f"The newest raw day is at most {q.freshness_max_lag_days} day(s) behind the newest day "
            "that should exist (yesterday, or the spec's last day)."
        ),
    )
    def freshness(warehouse: Warehouse) -> dg.AssetCheckResult:
        expected = expected_newest_day(spec, dt.date.today())
        with warehouse.get_connection() as conn:
            newest = newest_raw_day(conn, spec)
        lag = None if newest is None else (expected - newest).days
        return dg.AssetCheckResult(
            passed=lag is not None and lag <= q.freshness_max_lag_days,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_day": str(newest),
                "expected_newest_day": expected.isoformat(),
                "lag_days": lag if lag is not None else -1,
                "max_lag_days": q.freshness_max_lag_days,
            },
        )

    @dg.asset_check(
        asset=spec.names.key("raw"),
        name="source_rows_accounted",
        blocking=True,
        pool=warehouse_pool(),
        description=(
            "Per source file: rows in the file = rows placed in a day + rows rejected with a "
            f"reason (`{spec.name}.rejected_rows`), and each day of the run holds exactly the "
            "rows its files place there."
        ),
    )
    def source_rows_accounted(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> dg.AssetCheckResult:
        """Blocking (ERROR): a row missing from both raw and rejected_rows, or a day of raw that
        differs from its files, is a defect of the pipeline, not of the data, and every number
        downstream of the window would silently be wrong; rows rejected with a reason are the
        data's problem, counted here, and do not fail it."""
        partitioned = context.has_partition_key or context.has_partition_key_range
        start, end = window(context) if partitioned else (None, None)
        if spec.source.kafka is not None:
            with warehouse.get_connection() as conn:
                streams, reasons = stream_accounts(conn, spec, start, end)
            return dg.AssetCheckResult(
                passed=all(a.accounted for a in streams),
                metadata=_stream_metadata(spec, streams, reasons, start, end),
            )
        with warehouse.get_connection() as conn:
            accounts = source_accounts(conn, spec, start, end)
        return dg.AssetCheckResult(
            passed=all(a.accounted for a in accounts),
            metadata=_accounts_metadata(accounts, start, end),
        )

    return [row_count_anomaly, freshness, source_rows_accounted]


def _accounts_metadata(
    accounts: list[FileAccount], start: dt.date | None, end: dt.date | None
) -> dict[str, dg.MetadataValue]:
    reasons: dict[str, int] = {}
    for a in accounts:
        for code, n in a.reasons.items():
            reasons[code] = reasons.get(code, 0) + n
    rows = sum(a.rows or 0 for a in accounts)
    in_raw, rejected = sum(a.in_raw for a in accounts), sum(a.rejected for a in accounts)
    waiting, unaccounted = sum(a.waiting for a in accounts), sum(a.unaccounted for a in accounts)
    by_reason = ", ".join(f"{code} {n:,}" for code, n in sorted(reasons.items()))
    summary = (
        f"{rows:,} source rows in {len(accounts)} file(s): {in_raw:,} in raw, "
        f"{rejected:,} rejected{f' ({by_reason})' if by_reason else ''}, "
        f"{waiting:,} waiting for days not yet written; {unaccounted:,} unaccounted"
    )
    bad = [a for a in accounts if not a.accounted]
    return {
        "summary": dg.MetadataValue.text(summary),
        "days_judged": dg.MetadataValue.text(f"{start}..{end}" if start else "days raw holds"),
        "source_rows": dg.MetadataValue.int(rows),
        "raw_rows": dg.MetadataValue.int(in_raw),
        "rejected_rows": dg.MetadataValue.int(rejected),
        "rejected_by_reason": dg.MetadataValue.json(reasons),
        "waiting_rows": dg.MetadataValue.int(waiting),
        "unaccounted_rows": dg.MetadataValue.int(unaccounted),
        "raw_rows_off": dg.MetadataValue.int(sum(a.mismatched for a in accounts)),
        "files_not_accounted": dg.MetadataValue.json([a.as_metadata() for a in bad[:20]]),
        "files": dg.MetadataValue.json([a.as_metadata() for a in accounts[:50]]),
    }


def _stream_metadata(
    spec: DatasetSpec,
    streams: list[StreamAccount],
    reasons: dict[str, int],
    start: dt.date | None,
    end: dt.date | None,
) -> dict[str, dg.MetadataValue]:
    """A Kafka source's accounting: every consumed message is a ledger row or a quarantined
    message (never both), nothing is stored past the committed offset, and each day of raw holds
    exactly the ledger's rows of that day."""
    rows, quarantined = sum(a.rows for a in streams), sum(a.quarantined for a in streams)
    missing, extra = sum(a.missing_from_raw for a in streams), sum(a.extra_in_raw for a in streams)
    by_reason = ", ".join(f"{code} {n:,}" for code, n in sorted(reasons.items()))
    summary = (
        f"{rows + quarantined:,} messages from {len(streams)} topic partition(s): {rows:,} rows, "
        f"{quarantined:,} quarantined{f' ({by_reason})' if by_reason else ''} in "
        f"{spec.name}.stream_quarantine; {missing:,} ledger rows missing from raw, {extra:,} raw "
        "rows not in the ledger on the days judged"
    )
    return {
        "summary": dg.MetadataValue.text(summary),
        "days_judged": dg.MetadataValue.text(f"{start}..{end}" if start else "every day"),
        "stream_messages": dg.MetadataValue.int(rows + quarantined),
        "stream_rows": dg.MetadataValue.int(rows),
        "quarantined_messages": dg.MetadataValue.int(quarantined),
        "quarantined_by_reason": dg.MetadataValue.json(reasons),
        "ledger_rows_missing_from_raw": dg.MetadataValue.int(missing),
        "raw_rows_not_in_ledger": dg.MetadataValue.int(extra),
        "partitions_not_accounted": dg.MetadataValue.json(
            [a.as_metadata() for a in streams if not a.accounted][:20]
        ),
        "partitions": dg.MetadataValue.json([a.as_metadata() for a in streams[:50]]),
    }
