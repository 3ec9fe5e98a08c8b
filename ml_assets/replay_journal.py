"""The replay's journal: which steps of a dataset's replay have ended, and what they reported.

`make run` replays months of history, each step a Dagster run that changes the warehouse and the
registry (a registered candidate, a decision, a moved alias). Killed half way (`kill -9`, OOM,
Ctrl-C), a plain rerun from the start would train the first window again against the champion
the killed replay left behind, and its summary would tell a different history. So each step that
ended is journaled with what the summary needs from it (outcome, check results, the retrain
sensor's cursor and run requests), and a rerun of the same plan skips those steps and redoes the
rest. The step that was cut short is redone whole: its partition writes are idempotent, its
training finds the version it had registered (`lineage_key`) and a decision it had recorded is
not taken twice (`decide`), so the rerun's summary is the uninterrupted one. A finished journal
makes a rerun print the same summary again without replaying.

One JSON file per dataset beside the warehouse (`data/warehouse/replay/<dataset>.json`), so it
goes when the warehouse goes; written whole to a temporary name and renamed, so a kill leaves the
old or the new journal. A journal whose plan or code differs, or whose model versions the
registry no longer holds, is set aside and the replay starts over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_assets import settings
from ml_assets.run_report import CheckEntry, CheckOutcome

FORMAT = 1


def journal_path(dataset: str) -> Path:
    return settings.warehouse_path().parent / "replay" / f"{dataset}.json"


def identity(plan: dict[str, Any], code_versions: dict[str, str | None]) -> str:
    """What a journal is valid for: the replay plan and the code of every asset it runs."""
    text = json.dumps({"plan": plan, "code": code_versions, "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Step:
    """One step of the replay that ended, with what the summary and the next steps need."""

    outcome: str
    checks: list[CheckEntry]
    versions: list[str] = field(default_factory=list)  # candidate versions it registered
    cursor: str | None = None  # the retrain sensor's cursor after a month's tick
    requests: list[dict[str, Any]] = field(default_factory=list)  # the tick's run requests

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "checks": [[a, c, dataclasses.asdict(o)] for a, c, o in self.checks],
            "versions": self.versions,
            "cursor": self.cursor,
            "requests": self.requests,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Step:
        return cls(
            outcome=raw["outcome"],
            checks=[(a, c, CheckOutcome(**o)) for a, c, o in raw["checks"]],
            versions=list(raw.get("versions", [])),
            cursor=raw.get("cursor"),
            requests=list(raw.get("requests", [])),
        )


@dataclass
class Journal:
    """The ended steps of one replay, by key (`initial`, `2013-04/monitor`, `2013-04/retrain/0`)."""

    path: Path
    identity: str
    first_decision_id: int  # the summary lists the decisions of this replay from here on
    steps: dict[str, Step] = field(default_factory=dict)
    resumed: bool = False  # steps were loaded from an earlier make run

    def get(self, key: str) -> Step | None:
        return self.steps.get(key)

    def record(self, key: str, step: Step) -> None:
        self.steps[key] = step
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "format": FORMAT,
            "identity": self.identity,
            "first_decision_id": self.first_decision_id,
            "steps": {k: s.to_json() for k, s in self.steps.items()},
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("w") as out:
            json.dump(body, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


def open_journal(
    dataset: str,
    ident: str,
    *,
    next_decision_id: Callable[[], int],
    version_exists: Callable[[str], bool],
) -> Journal:
    """The journal of this plan if an earlier run left one that still matches the registry,
    else a new one (the old file is kept beside it as `<dataset>.json.old`)."""
    path = journal_path(dataset)
    if path.exists():
        try:
            raw = json.loads(path.read_text())
            steps = {k: Step.from_json(v) for k, v in raw["steps"].items()}
            usable = raw.get("format") == FORMAT and raw["identity"] == ident
            usable = usable and all(version_exists(v) for s in steps.values() for v in s.versions)
        except (ValueError, KeyError, TypeError):
            usable = False
        if usable:
            first = int(raw["first_decision_id"])
            return Journal(path, ident, first, steps, resumed=bool(steps))
        os.replace(path, path.with_name(path.name + ".old"))
    journal = Journal(path, ident, next_decision_id())
    journal._write()
    return journal
