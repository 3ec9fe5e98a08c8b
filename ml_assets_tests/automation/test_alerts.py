"""The alert sensor: each failed check or run of a dataset is posted to a real webhook, once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from ml_assets.automation.alerts import (
    AlertCursor,
    AlertWebhook,
    advance_checks,
    build_alert_sensor,
    check_message,
    run_message,
)
from ml_assets.core.checks import DayResult, daily_asset_check, record_days, window_days
from ml_assets.core.partitions import daily_partitions, window
from ml_assets.core.spec import parse_spec
from ml_assets.core.tags import RANGE_END, RANGE_START

DEMO = parse_spec(
    {
        "name": "demo",
        "source": {"files": ["demo.csv"]},
        "partitions": {"start": "2024-01-01"},
        "event_time": {"column": "at"},
        "label": {"kind": "binary", "column": "y"},
        "contract": {
            "unique_key": ["id"],
            "columns": {
                "id": {"type": "BIGINT"},
                "at": {"type": "TIMESTAMP"},
                "y": {"type": "BOOLEAN"},
            },
        },
    },
    None,
)


class Hook(ThreadingHTTPServer):
    """A webhook on 127.0.0.1 that records each JSON body it accepts; `status` sets its answer."""

    status = 200
    bodies: list[dict]
    attempts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Handler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.attempts += 1
        if self.server.status == 200:
            self.server.bodies.append(body)
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook(("127.0.0.1", 0), Handler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@dg.asset(key=["demo", "thing"])
def thing() -> int:
    return 1


@dg.asset_check(asset=thing)
def error_fails() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"partition_end": "2024-01-03", "summary": "drift share 0.7 > 0.6"},
    )


@dg.asset_check(asset=thing)
def passes() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset_check(asset=thing)
def warn_fails() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN)


@dg.asset(key=["demo", "broken"])
def broken() -> None:
    raise RuntimeError("the source went away")


@dg.asset(key=["other", "broken"])
def other_broken() -> None:
    raise RuntimeError("not demo's problem")


GATE = threading.Event()


@dg.asset(key=["demo", "slow_thing"])
def slow_thing() -> int:
    return 1


@dg.asset_check(asset=slow_thing)
def slow_check() -> dg.AssetCheckResult:
    """Fails only once the test opens the gate: a check still running while others finish."""
    assert GATE.wait(30)
    return dg.AssetCheckResult(passed=False)


BAD_DAYS = {"2024-01-02", "2024-01-04"}


@dg.asset(key=["demo", "daily"], partitions_def=daily_partitions(DEMO))
def daily() -> None:
    pass


@daily_asset_check(DEMO, asset=daily)
def daily_rows(context) -> dg.AssetCheckResult:  # no hint: this module defers annotations
    """Fails on BAD_DAYS; a range run records each day and the window's result."""
    start, end = window(context)
    days = [DayResult(d, d.isoformat() not in BAD_DAYS) for d in window_days(start, end)]
    return dg.AssetCheckResult(
        passed=all(d.passed for d in days), metadata=record_days(context, days, {})
    )


CHECKED = [thing, error_fails, passes, warn_fails]


def definitions(url: str, **config: object) -> dg.Definitions:
    return dg.Definitions(
        assets=[thing, slow_thing, broken, other_broken, daily],
        asset_checks=[error_fails, passes, warn_fails, slow_check, daily_rows],
        jobs=[
            dg.define_asset_job("demo__broken", selection=[broken]),
            dg.define_asset_job("other__broken", selection=[other_broken]),
        ],
        sensors=[build_alert_sensor(DEMO)],
        resources={"alert_webhook": AlertWebhook(url=url, **config)},
    )


def evaluate(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult:
    """One tick as the daemon runs it: `evaluate_tick` does not read resources from
    `definitions`, so the top-level `alert_webhook` is passed the way the code server does."""
    sensor = defs.resolve_sensor_def("demo__alerts")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    return sensor.evaluate_tick(context)


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> str:
    result = evaluate(defs, instance, cursor)
    assert result.cursor is not None
    return result.cursor


def run_job(
    defs: dg.Definitions, name: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)


def texts(hook: Hook) -> list[str]:
    return [b["text"] for b in hook.bodies]


def test_a_failed_error_check_is_posted_once(hook: Hook, instance: dg.DagsterInstance) -> None:
    defs = definitions(hook.url, ui_url="http://ui:3000/")
    assert dg.materialize(CHECKED, instance=instance).success  # history before the first tick
    cursor = tick(defs, instance, None)
    assert hook.bodies == []  # the first tick only notes where history ends

    result = dg.materialize(CHECKED, instance=instance)
    cursor = tick(defs, instance, cursor)
    assert len(hook.bodies) == 1
    body = hook.bodies[0]
    text = body["text"]
    assert body["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    assert "*demo*" in text and "error_fails" in text and "(ERROR)" in text
    assert "partition_end: 2024-01-03" in text and "summary: drift share 0.7 &gt; 0.6" in text
    assert "<http://ui:3000/assets/demo/thing?view=checks|" in text
    assert f"<http://ui:3000/runs/{result.run_id}|" in text
    assert "passes" not in text and "warn_fails" not in text

    cursor = tick(defs, instance, cursor)
    assert len(hook.bodies) == 1  # the same failure is not posted again

    again = dg.materialize(CHECKED, instance=instance)
    tick(defs, instance, cursor)
    assert len(hook.bodies) == 2 and again.run_id in texts(hook)[1]


def test_a_range_run_posts_one_alert_naming_its_failed_days(hook: Hook, instance) -> None:
    defs = definitions(hook.url)
    cursor = tick(defs, instance, None)
    tags = {RANGE_START: "2024-01-01", RANGE_END: "2024-01-05"}
    assert dg.materialize([daily, daily_rows], instance=instance, tags=tags).success
    cursor = tick(defs, instance, cursor)
    # Two failed days and the failed window: one message, for the window, naming the days.
    (text,) = texts(hook)
    assert "*daily_rows*" in text and "failed days: 2024-01-02, 2024-01-04" in text
    assert "partition:" not in text
    tick(defs, instance, cursor)
    assert len(hook.bodies) == 1


def test_failed_warnings_are_posted_only_when_enabled(hook: Hook, instance) -> None:
    for include, expected in ((False, ["error_fails"]), (True, ["error_fails", "warn_fails"])):
        hook.bodies.clear()
        defs = definitions(hook.url, include_warnings=include)
        cursor = tick(defs, instance, None)
        dg.materialize(CHECKED, instance=instance)
        tick(defs, instance, cursor)
        names = ("error_fails", "passes", "warn_fails")
        posted = sorted(n for t in texts(hook) for n in names if f"*{n}*" in t)
        assert posted == expected and len(hook.bodies) == len(expected)
        assert all("(WARN)" in t for t in texts(hook) if "warn_fails" in t)


def test_a_check_still_running_is_posted_when_it_fails(hook: Hook, instance) -> None:
    # Check ids are given when a check is *planned*: the slow check gets the lower id, yet fails
    # after the fast one was posted. A plain "highest id seen" cursor would skip it for ever.
    defs = definitions(hook.url)
    cursor = tick(defs, instance, None)
    history = instance.event_log_storage.get_asset_check_execution_history
    GATE.clear()
    slow = threading.Thread(
        target=dg.materialize, args=([slow_thing, slow_check],), kwargs={"instance": instance}
    )
    slow.start()
    try:
        deadline = time.monotonic() + 30
        while not history(slow_check.check_key, limit=1):  # planned, and now waiting
            assert time.monotonic() < deadline, "the slow check was never planned"
            time.sleep(0.05)
        dg.materialize(CHECKED, instance=instance)
        cursor = tick(defs, instance, tick(defs, instance, cursor))
        assert len(hook.bodies) == 1 and "error_fails" in texts(hook)[0]
    finally:
        GATE.set()
        slow.join(30)
    cursor = tick(defs, instance, tick(defs, instance, cursor))
    assert len(hook.bodies) == 2 and "slow_check" in texts(hook)[1]
    final = AlertCursor.parse(cursor)  # past both, and nothing left to remember
    newest = max(r.id for c in [*CHECKED[1:], slow_check] for r in history(c.check_key, limit=1))
    assert final is not None and (final.check_id, final.check_sent) == (newest, [])


def test_a_failed_run_of_the_dataset_is_posted_once(hook: Hook, instance) -> None:
    defs = definitions(hook.url)
    cursor = tick(defs, instance, None)
    failed = run_job(defs, "demo__broken", instance)
    assert not failed.success
    assert not run_job(defs, "other__broken", instance).success  # another dataset's: not posted
    cursor = tick(defs, instance, cursor)
    assert len(hook.bodies) == 1
    text = texts(hook)[0]
    assert "run failed: job `demo__broken`" in text and "RuntimeError: the source went away" in text
    assert f"<http://localhost:3000/runs/{failed.run_id}|" in text

    # An ad-hoc run of the dataset's assets (Dagster's implicit job) counts too.
    adhoc = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[broken.key], raise_on_error=False
    )
    cursor = tick(defs, instance, cursor)
    tick(defs, instance, cursor)
    assert len(hook.bodies) == 2 and adhoc.run_id in texts(hook)[1]


def test_an_unsent_alert_is_retried_next_tick(hook: Hook, instance, capfd) -> None:
    defs = definitions(hook.url)
    cursor = tick(defs, instance, None)
    dg.materialize(CHECKED, instance=instance)
    run_job(defs, "demo__broken", instance)
    hook.status = 500
    capfd.readouterr()
    cursor = tick(defs, instance, cursor)
    assert hook.attempts == 1 and hook.bodies == []  # refused: nothing more this tick
    logged = capfd.readouterr().err  # the sensor's log goes to Dagster's console logger
    assert "WARNING" in logged and "alert webhook failed" in logged and "500" in logged
    hook.status = 200
    cursor = tick(defs, instance, cursor)
    tick(defs, instance, cursor)
    assert len(hook.bodies) == 2 and "error_fails" in texts(hook)[0]
    assert "demo__broken" in texts(hook)[1]


def test_without_a_url_the_cursor_advances(hook: Hook, instance) -> None:
    off = definitions("")
    cursor = tick(off, instance, None)
    dg.materialize(CHECKED, instance=instance)
    result = evaluate(off, instance, cursor)
    assert "url is empty" in (result.skip_message or "")
    # Configuring the URL later posts only failures that happen after.
    tick(definitions(hook.url), instance, result.cursor)
    assert hook.bodies == [] and hook.attempts == 0


def test_check_message_names_the_check_and_links_back() -> None:
    key = dg.AssetCheckKey(dg.AssetKey(["demo", "my thing"]), "a<b")
    details = ["worst_day: 2024-01-02", "summary: 3 & more"]
    payload = check_message("demo", key, "WARN", "0123456789ab", details, "http://ui")
    text = payload["text"]
    assert payload == {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
    assert text.splitlines() == [
        ":rotating_light: *demo* check failed (WARN): `demo/my thing` > *a&lt;b*",
        "worst_day: 2024-01-02",
        "summary: 3 &amp; more",
        "<http://ui/assets/demo/my%20thing?view=checks|asset checks>"
        " | <http://ui/runs/0123456789ab|run 01234567>",
    ]
    # A check reported from outside a run has no run to link to.
    assert "/runs/" not in check_message("demo", key, "ERROR", "", [], "http://ui")["text"]


def test_run_message_names_the_job_and_links_to_the_run() -> None:
    text = run_message("demo", "demo__train", "fedcba987654", "RuntimeError: <boom>", "http://ui")[
        "text"
    ]
    assert text.splitlines() == [
        ":x: *demo* run failed: job `demo__train`",
        "RuntimeError: &lt;boom&gt;",
        "<http://ui/runs/fedcba987654|run fedcba98>",
    ]


def test_a_running_check_holds_the_cursor_without_reposting() -> None:
    # Ids are given when checks are planned: 5 is still running while 6 already failed and posted.
    check_id, sent = advance_checks(AlertCursor(4), [5, 6], held={5}, handled={6})
    assert (check_id, sent) == (4, [6])
    # Next tick, 5 fails and is posted: the cursor moves past both and forgets them.
    assert advance_checks(AlertCursor(4, [6]), [5, 6], held=set(), handled={5}) == (6, [])
