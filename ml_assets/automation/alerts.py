"""The alert sensor: each new failed check and failed run of a dataset, posted to a Slack webhook.

It reads only the Dagster instance, like the retrain sensor. A JSON cursor makes each failure post
exactly once: a failure the webhook refused stays ahead of the cursor and is retried next tick.
The first tick only notes where history ends, and a tick without a URL still moves the cursor, so
starting the sensor (or setting the URL later) never floods the channel with old failures.
A run over a range of days posts one message per failed check, naming its failed days, not one
per day: the per-day records (`ml_assets.core.checks`) are details of the window's result.
"""

import json
import logging
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)
from pydantic import Field

from ml_assets.core.checks import is_day_record
from ml_assets.core.spec import DatasetSpec

MAX_MESSAGES_PER_TICK = 20
POST_BUDGET_SECONDS = 30  # stop posting well inside the 60 s a sensor tick may take
PAGE = 100
# A check planned by a run that never reports back (a killed worker) holds the cursor this long.
STUCK_AFTER_SECONDS = 24 * 3600
DETAIL_KEYS = ("partition_end", "worst_day", "summary")  # metadata our monitoring checks attach
LISTED_DAYS = 10  # failed days named in one message
FAILED = AssetCheckExecutionRecordStatus.FAILED


class AlertWebhook(dg.ConfigurableResource):
    """A Slack incoming webhook: `AlertWebhook(url=dg.EnvVar("ML_ASSETS_ALERT_WEBHOOK_URL"))`."""

    url: str = Field("", description="Incoming-webhook URL; empty turns posting off.")
    include_warnings: bool = Field(False, description="Also post failed WARN-severity checks.")
    ui_url: str = Field("http://localhost:3000", description="Dagster UI base for the links.")
    timeout_seconds: float = Field(5.0, gt=0, description="Bound on each POST.")

    def post(self, payload: dict) -> None:
        """POST the payload as JSON; raises OSError (URLError, HTTPError, timeout) on failure."""
        if not self.url.startswith(("https://", "http://")):
            raise ValueError("AlertWebhook.url must be an http(s) URL")
        body, headers = json.dumps(payload).encode(), {"Content-Type": "application/json"}
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            response.read()


@dataclass
class AlertCursor:
    check_id: int = 0  # every check execution at or below this id is settled
    check_sent: list[int] = field(default_factory=list)  # ids above it already handled
    run_event_id: int = 0  # storage id of the last RUN_FAILURE event handled

    @classmethod
    def parse(cls, raw: str | None) -> "AlertCursor | None":
        return cls(**json.loads(raw)) if raw else None

    def dump(self) -> str:
        return json.dumps(asdict(self))


def _escape(text: str) -> str:
    """Slack reads `&`, `<` and `>` as markup; user text must not."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(text: str) -> dict:
    """A Slack incoming-webhook message: `text` is the notification fallback, the block shows."""
    text = text[:2900]  # a section block holds at most 3000 characters
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def check_message(
    dataset: str, key: dg.AssetCheckKey, severity: str, run_id: str, details: Sequence[str], ui: str
) -> dict:
    """The message for one failed check: what failed, on which window, and links to the UI."""
    path = "/".join(key.asset_key.path)
    lines = [
        f":rotating_light: *{_escape(dataset)}* check failed ({severity}): "
        f"`{_escape(path)}` > *{_escape(key.name)}*",
        *(_escape(d) for d in details),
    ]
    links = [f"<{ui}/assets/{quote(path)}?view=checks|asset checks>"]
    if run_id:  # a check reported from outside a run has none
        links.append(f"<{ui}/runs/{run_id}|run {run_id[:8]}>")
    return slack_payload("\n".join([*lines, " | ".join(links)]))


def run_message(dataset: str, job_name: str, run_id: str, reason: str, ui: str) -> dict:
    """The message for one failed run: its job, why it failed, and a link to the run."""
    return slack_payload(
        f":x: *{_escape(dataset)}* run failed: job `{_escape(job_name)}`\n{_escape(reason)}\n"
        f"<{ui}/runs/{run_id}|run {run_id[:8]}>"
    )


def check_alert(dataset: str, record: AssetCheckExecutionRecord, ui: str) -> dict:
    """`check_message` for a failed check record: its partition and window/summary metadata."""
    evaluation = record.evaluation
    meta = evaluation.metadata if evaluation else {}
    details = [f"partition: {record.partition}"] if record.partition else []
    days = meta["failed_partitions"].value if "failed_partitions" in meta else None
    if days and not record.partition:  # a range run: which of its days failed
        count = meta["failed_partition_count"].value if "failed_partition_count" in meta else 0
        more = max(0, int(count or 0) - LISTED_DAYS)
        details.append(
            f"failed days: {', '.join(days[:LISTED_DAYS])}" + (f" (+{more} more)" if more else "")
        )
    details += [f"{k}: {meta[k].value}" for k in DETAIL_KEYS if k in meta]
    if evaluation is not None and evaluation.description:
        details.append(evaluation.description)
    severity = evaluation.severity.value if evaluation else "ERROR"
    return check_message(dataset, record.key, severity, record.run_id, details, ui)


def failure_reason(entry: dg.EventLogEntry) -> str:
    """Dagster's run-failure message plus the root cause of the first failed step."""
    event = entry.dagster_event
    step = getattr(event.event_specific_data, "first_step_failure_event", None) if event else None
    error = getattr(step.event_specific_data, "error", None) if step else None
    while error is not None and error.cause is not None:
        error = error.cause
    cause = (error.message.strip().splitlines() or [""])[0] if error else ""
    return "\n".join(s for s in ((event.message if event else None) or "", cause) if s)


def _executions_after(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, after_id: int
) -> list[AssetCheckExecutionRecord]:
    history = instance.event_log_storage.get_asset_check_execution_history
    out, before = [], None
    while True:  # newest first, paged down to the cursor
        page = history(key, limit=PAGE, cursor=before)
        out += [r for r in page if r.id > after_id]
        if len(page) < PAGE or page[-1].id <= after_id:
            return out
        before = page[-1].id


def _in_progress(instance: dg.DagsterInstance, record: AssetCheckExecutionRecord) -> bool:
    """A planned check its run may still report. Ids are given when checks are *planned*, so
    such a check must hold the cursor back, or its later failure would fall behind it."""
    if record.status != AssetCheckExecutionRecordStatus.PLANNED or not record.run_id:
        return False
    run = instance.get_run_by_id(record.run_id)
    young = time.time() - record.create_timestamp < STUCK_AFTER_SECONDS
    return run is not None and not run.is_finished and young


def _is_dataset_run(instance: dg.DagsterInstance, entry: dg.EventLogEntry, dataset: str) -> bool:
    """A run of a `<dataset>__` job, or of the dataset's assets under Dagster's implicit job
    (a UI materialization, or the eager layers' automation runs)."""
    if (entry.job_name or "").startswith(f"{dataset}__"):
        return True
    run = instance.get_run_by_id(entry.run_id)
    return run is not None and any(k.path[0] == dataset for k in run.asset_selection or ())


def advance_checks(
    cursor: AlertCursor, seen: list[int], held: set[int], handled: set[int]
) -> tuple[int, list[int]]:
    """The new check watermark, just below the first execution still running or failed but
    unsent, and the ids above it already handled, so the next tick does not post them again."""
    check_id = min(held) - 1 if held else max(seen, default=cursor.check_id)
    return check_id, sorted(i for i in {*cursor.check_sent, *handled} if i > check_id)


def deliver(webhook: AlertWebhook, payloads: list[dict], log: logging.Logger) -> int:
    """Post in order until the first error, the per-tick cap or the time budget; how many."""
    deadline = time.monotonic() + POST_BUDGET_SECONDS
    for n, payload in enumerate(payloads[:MAX_MESSAGES_PER_TICK]):
        if time.monotonic() > deadline:
            return n
        try:
            webhook.post(payload)
        except (OSError, ValueError) as exc:
            log.warning(f"alert webhook failed; retrying next tick: {exc}")
            return n
    return min(len(payloads), MAX_MESSAGES_PER_TICK)


def first_cursor(instance: dg.DagsterInstance, keys: Sequence[dg.AssetCheckKey]) -> AlertCursor:
    """Where history ends now: the first tick starts here, so old failures never post."""
    history = instance.event_log_storage.get_asset_check_execution_history
    last = [r.id for k in keys for r in history(k, limit=1)]
    runs = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1).records
    return AlertCursor(max(last, default=0), [], runs[0].storage_id if runs else 0)


def alert_tick(
    instance: dg.DagsterInstance,
    dataset: str,
    keys: Sequence[dg.AssetCheckKey],
    cursor: AlertCursor,
    webhook: AlertWebhook,
    log: logging.Logger,
) -> tuple[AlertCursor, str]:
    """Post what failed since `cursor`, checks first; the next cursor and a summary."""
    records = sorted(
        (r for k in keys for r in _executions_after(instance, k, cursor.check_id)),
        key=lambda r: r.id,
    )
    error_only = not webhook.include_warnings
    failed = [
        r
        for r in records
        if r.status == FAILED
        and r.id not in cursor.check_sent
        and r.evaluation is not None
        and not is_day_record(r.evaluation)
        and not (error_only and r.evaluation.severity != dg.AssetCheckSeverity.ERROR)
    ]
    run_filter = dg.RunStatusChangeRecordsFilter(
        dg.DagsterEventType.RUN_FAILURE, after_storage_id=cursor.run_event_id
    )
    events = instance.fetch_run_status_changes(run_filter, limit=PAGE, ascending=True).records
    ours = [e for e in events if _is_dataset_run(instance, e.event_log_entry, dataset)]
    ui = webhook.ui_url.rstrip("/")
    payloads = [check_alert(dataset, r, ui) for r in failed]
    for entry in (e.event_log_entry for e in ours):
        reason = failure_reason(entry)
        payloads.append(run_message(dataset, entry.job_name or "", entry.run_id, reason, ui))
    # Without a URL all count as handled: setting it later must not flood the channel.
    n = deliver(webhook, payloads, log) if webhook.url else len(payloads)
    held = {r.id for r in records if _in_progress(instance, r)} | {r.id for r in failed[n:]}
    seen, handled = [r.id for r in records], {r.id for r in failed[:n]}
    check_id, check_sent = advance_checks(cursor, seen, held, handled)
    unsent_runs = ours[max(0, n - len(failed)) :]
    run_id = events[-1].storage_id if events else cursor.run_event_id
    if unsent_runs:
        run_id = unsent_runs[0].storage_id - 1
    summary = f"Posted {n} of {len(payloads)} alert(s)."
    if not webhook.url:
        summary = f"AlertWebhook.url is empty: {len(payloads)} failure(s) not posted."
    return AlertCursor(check_id, check_sent, run_id), summary


def build_alert_sensor(spec: DatasetSpec) -> dg.SensorDefinition:
    """`<dataset>__alerts`, which needs the `alert_webhook` resource (an `AlertWebhook`)."""
    dataset = spec.name

    @dg.sensor(
        name=spec.names.sensor("alerts"),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Posts each new failed ERROR check (WARN too if `alert_webhook.include_warnings`) "
            f"and each failed run of `{dataset}` to the Slack webhook `alert_webhook.url`, once."
        ),
    )
    def alerts(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook) -> dg.SensorResult:
        repo = context.repository_def
        if repo is None:
            raise dg.DagsterInvariantViolationError("the alert sensor needs its definitions")
        keys = [k for k in repo.asset_graph.asset_check_keys if k.asset_key.path[0] == dataset]
        cursor = AlertCursor.parse(context.cursor)
        if cursor is None:
            start = first_cursor(context.instance, keys).dump()
            return dg.SensorResult(skip_reason="First tick: alerting from now on.", cursor=start)
        new, summary = alert_tick(
            context.instance, dataset, keys, cursor, alert_webhook, context.log
        )
        return dg.SensorResult(skip_reason=summary, cursor=new.dump())

    return alerts
