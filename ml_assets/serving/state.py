"""What is being served, and hot reload: a new champion or snapshot replaces the old whole.

Each dataset's `Served` bundles a loaded model with the online snapshot it computes features
from. A poller loads whatever the `champion` alias and the store's pointer name now, *then*
swaps the reference; a request takes the reference once at its start, so it finishes with the
version it began with and never sees a half-loaded one. A failed load keeps the old version
serving and is reported on `/health`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ml_assets import settings
from ml_assets.core.predictor import (
    CHAMPION,
    RegisteredPredictor,
    current_champion,
    load_predictor,
    registered_ref,
)
from ml_assets.core.spec import DatasetSpec, load_specs
from ml_assets.layers.online import store
from ml_assets.layers.online.compute import OnlineFeatures
from ml_assets.resources.mlflow_tracking import MlflowTracking

log = logging.getLogger("ml_assets.serving")


def model_name(spec: DatasetSpec) -> str:
    return spec.training.registered_model_name or f"{spec.name}_model"


@dataclass(frozen=True)
class Served:
    spec: DatasetSpec
    predictor: RegisteredPredictor
    online: OnlineFeatures
    loaded_at: dt.datetime


@dataclass
class ServingState:
    """Datasets by name. `served` is replaced, never mutated, so readers need no lock."""

    specs: dict[str, DatasetSpec]
    tracking: MlflowTracking
    store_root: Path | None = None
    served: dict[str, Served] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_project(cls, store_root: Path | None = None) -> ServingState:
        specs = {s.name: s for s in load_specs(settings.specs_dir()) if s.has_model_layers}
        return cls(specs=specs, tracking=MlflowTracking(), store_root=store_root)

    def refresh(self) -> None:
        """Load any dataset whose champion or snapshot moved; swap each in when it loaded."""
        with self._lock:  # one refresh at a time; requests never take this lock
            for name, spec in self.specs.items():
                try:
                    self._refresh(name, spec)
                except Exception as exc:  # keep serving what we have
                    log.exception("reload of %s failed", name)
                    self.problems = {**self.problems, name: f"reload failed: {type(exc).__name__}"}

    def _refresh(self, name: str, spec: DatasetSpec) -> None:
        version = current_champion(self.tracking, model_name(spec))
        snapshot = store.current_snapshot(name, self.store_root)
        missing = (
            "no champion model"
            if version is None
            else "no online snapshot"
            if snapshot is None
            else None
        )
        if missing:
            self.served = {k: v for k, v in self.served.items() if k != name}
            self.problems = {**self.problems, name: missing}
            return
        old = self.served.get(name)
        if old and old.predictor.ref.version == version and old.online.snapshot == snapshot:
            return
        predictor = old.predictor if old and old.predictor.ref.version == version else None
        if predictor is None:
            ref = registered_ref(self.tracking, model_name(spec), alias=CHAMPION)
            predictor = load_predictor(ref, self.tracking)
        online = (
            old.online
            if old and old.online.snapshot == snapshot
            else OnlineFeatures(spec, snapshot)
        )
        fresh = Served(spec, predictor, online, dt.datetime.now(dt.UTC))
        self.served = {**self.served, name: fresh}
        self.problems = {k: v for k, v in self.problems.items() if k != name}
        log.info("serving %s: %s v%s, snapshot %s", name, model_name(spec), version, snapshot.name)


class Poller:
    """Calls `state.refresh()` every `seconds` on a daemon thread until stopped."""

    def __init__(self, state: ServingState, seconds: float) -> None:
        self.state, self.seconds = state, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="serving-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.seconds + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            self.state.refresh()
