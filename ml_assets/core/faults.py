"""Named crash points for the fault-matrix tests (`ml_assets_tests/faults/`).

`fault_point("features.chunk_written")` does nothing unless `ML_ASSETS_FAULT` names that point;
then the process dies with SIGKILL there (no cleanup, no `finally`, no Dagster event: what the
OOM killer or `kill -9` does), deterministically, inside the transaction or between the two
writes the point sits between. The variable's value is `[<action>@]<name>[:<n>]`:

- `<name>`: the first time the point is reached; `<name>:<n>`: the n-th time (1-based), for
  points inside a loop (a window written in chunks, one file after another).
- `<action>`: `kill` (the default) or `enospc`, which raises `OSError(ENOSPC)` at the point
  instead, as a full disk would fail the write there.

Read at every call, never at import (a no-op costs one dict lookup), so a test sets it for one
subprocess only.
"""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter

ENV = "ML_ASSETS_FAULT"
ACTIONS = ("kill", "enospc")

_hits: Counter[str] = Counter()


def parse(value: str) -> tuple[str, str, int]:
    """(action, point name, n-th hit) from an `ML_ASSETS_FAULT` value."""
    action, _, target = value.strip().rpartition("@")
    action = action or "kill"
    name, _, nth = target.partition(":")
    if action not in ACTIONS or not name or (nth and not nth.isdigit()) or nth == "0":
        raise ValueError(f"{ENV}={value!r}: expected [kill@|enospc@]<point>[:<n>], n >= 1")
    return action, name, int(nth or 1)


def fault_point(name: str) -> None:
    """Crash here if `ML_ASSETS_FAULT` names this point (and this is its n-th hit)."""
    value = os.environ.get(ENV)
    if not value:
        return
    action, target, nth = parse(value)
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] != nth:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, f"No space left on device (simulated: {ENV} at {name})")
    os.kill(os.getpid(), signal.SIGKILL)
