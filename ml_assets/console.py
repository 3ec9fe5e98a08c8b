"""What `make run` prints while it works: one line per finished stage, a live line in between.

A stage (the data layers, a training, a month of the replay) prints one line when it ends: what it
covered, what came of it, how long it took. Those lines are the progress report when stdout is not
a terminal (CI logs, `make run > log`), one per month of a replay. On a terminal, a status line
below them says what is running right now (the step, the month and how many days are done) and is
rewritten in place, then cleared before the next stage line.

Dagster's own events feed the live line: `watch` registers a listener on the instance for one run
(`execute_in_process(run_id=...)`), so nothing extra is logged to the run.

Libraries' notes stay off the console: `route_library_logs` sends their INFO and DEBUG lines to a
log file (their warnings and errors still print), and `LogStream` takes what Dagster's own console
logger prints for a sensor evaluated in-process (a sensor's `context.log` always writes INFO
lines to stderr there) into the same file.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dagster as dg

STAGE_WIDTH, WINDOW_WIDTH = 18, 24
_STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}


@dataclass
class Console:
    """Stage lines on `stream`; a status line rewritten in place when `stream` is a terminal."""

    stream: TextIO = field(default_factory=lambda: sys.stdout)
    live: bool | None = None  # default: whether `stream` is a terminal
    _status: str = ""

    def __post_init__(self) -> None:
        if self.live is None:
            self.live = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, text: str = "") -> None:
        """A permanent line (the status line, if any, is cleared first and redrawn after)."""
        self._clear()
        self.stream.write(text + "\n")
        self._draw()

    def stage(self, name: str, window: str, outcome: str, seconds: float) -> None:
        """One stage's line: name, the days or window it covered, its time, what came of it."""
        self.line(
            f"  {name:<{STAGE_WIDTH}} {window:<{WINDOW_WIDTH}} {seconds:>6.1f}s  {outcome}".rstrip()
        )

    def status(self, text: str) -> None:
        """What is running now; shown only on a terminal (a log gets the stage lines instead)."""
        self._clear()
        self._status = text
        self._draw()

    def done(self) -> None:
        self.status("")

    def watch(
        self, instance: dg.DagsterInstance, run_id: str, label: str, steps: int
    ) -> Callable[[], None]:
        """Show `label`, the running step and `steps` done so far while run `run_id` executes.
        Returns a function that stops showing it."""
        started, finished = time.monotonic(), [0]
        current = [""]
        active = [True]

        def on_event(entry: dg.EventLogEntry) -> None:
            event = entry.dagster_event
            if not active[0] or event is None or event.event_type not in _STEP_EVENTS:
                return
            if event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                finished[0] += 1
            else:
                current[0] = (event.step_key or "").split("__", 1)[-1]
            elapsed = time.monotonic() - started
            self.status(
                f"  > {label}: {current[0]} (step {finished[0] + 1}/{steps}, {elapsed:.0f}s)"
            )

        if self.live:
            instance.add_event_listener(run_id, on_event)

        def stop() -> None:
            active[0] = False
            self.done()

        return stop

    def _clear(self) -> None:
        if self.live and self._status:
            self.stream.write("\r\x1b[2K")

    def _draw(self) -> None:
        if self.live and self._status:
            self.stream.write(self._status[:160])
        self.stream.flush()


@contextmanager
def library_logs_to(path: Path, names: Sequence[str]) -> Iterator[Path]:
    """While open, the loggers `names` (and `ml_assets`) write INFO and DEBUG lines to `path`
    instead of the console; WARNING and above still reach the console through their own handlers.
    Levels and handlers are put back afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    saved: list[tuple[logging.Handler | logging.Logger, int]] = []
    loggers = [logging.getLogger(name) for name in [*names, "ml_assets"]]
    for logger in loggers:
        saved.append((logger, logger.level))
        for existing in logger.handlers:
            if isinstance(existing, logging.StreamHandler) and not isinstance(
                existing, logging.FileHandler
            ):
                saved.append((existing, existing.level))
                existing.setLevel(max(existing.level, logging.WARNING))
        logger.setLevel(logging.DEBUG if logger.name == "ml_assets" else logging.INFO)
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        for item, level in saved:
            item.setLevel(level)
        handler.close()


class LogStream(io.TextIOBase):
    """A text stream whose lines become records of `logger` (for `contextlib.redirect_stderr`)."""

    def __init__(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        self.logger, self.level, self._pending = logger, level, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self.logger.log(self.level, line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self.logger.log(self.level, self._pending.rstrip())
        self._pending = ""
