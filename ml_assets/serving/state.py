"""What is being served, and hot reload: a new champion or snapshot replaces the old whole.

Each dataset's `Served` bundles a loaded model with the online snapshot it computes features
from. A poller loads whatever the `champion` alias and the store's pointer name now, *then*
swaps the reference; a request takes the reference once at its start, so it finishes with the
version it began with and never sees a half-loaded one. A failed load keeps the old version
serving and is reported on `/health`.

The `challenger` alias (set by `model_candidate` on every registered candidate) is loaded beside
the champion when it names another version: it scores every request in shadow and answers the
canary share (`background.py`, `app.py`). A challenger that fails to load is left out, and the
champion keeps serving alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException

from ml_assets import settings
from ml_assets.core.predictor import (
    CHALLENGER,
    CHAMPION,
    RegisteredPredictor,
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
    challenger: RegisteredPredictor | None = None  # another version than the champion, or None


@dataclass
class ServingState:
    """Datasets by name. `served` is replaced, never mutated, so readers need no lock."""

    specs: dict[str, DatasetSpec]
    tracking: MlflowTracking
    store_root: Path | None = None
    served: dict[str, Served] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    # Load the `challenger` too (shadow or canary on); why one is not loaded, per dataset.
    with_challenger: bool = True
    challenger_problems: dict[str, str] = field(default_factory=dict)
    # Called with (dataset, role champion|challenger|snapshot, outcome loaded|failed).
    on_reload: Callable[[str, str, str], None] | None = None
    _failed_challenger: dict[str, str] = field(default_factory=dict)
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
                    self._reloaded(name, "champion", "failed")
                    self.problems = {**self.problems, name: f"reload failed: {type(exc).__name__}"}

    def _reloaded(self, name: str, role: str, outcome: str) -> None:
        if self.on_reload is not None:
            self.on_reload(name, role, outcome)

    def _aliases(self, spec: DatasetSpec) -> dict[str, str]:
        try:
            aliases = self.tracking.client().get_registered_model(model_name(spec)).aliases
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {k: str(v) for k, v in aliases.items()}

    def _challenger(
        self, name: str, spec: DatasetSpec, version: str | None, old: Served | None
    ) -> RegisteredPredictor | None:
        """The challenger's predictor: kept when unchanged, loaded when moved, None when the
        alias is unset or names the champion, or when its version failed to load (not retried
        until the alias moves)."""
        if version is None:
            self.challenger_problems = {**self.challenger_problems, name: "no challenger"}
            return None
        if old and old.challenger and old.challenger.ref.version == version:
            return old.challenger
        if self._failed_challenger.get(name) == version:
            return None
        try:
            ref = registered_ref(self.tracking, model_name(spec), version=version)
            predictor = _one_thread(load_predictor(ref, self.tracking))
        except Exception as exc:
            log.exception("challenger %s v%s failed to load", name, version)
            self._failed_challenger = {**self._failed_challenger, name: version}
            self.challenger_problems = {
                **self.challenger_problems,
                name: f"v{version} failed to load: {type(exc).__name__}",
            }
            self._reloaded(name, "challenger", "failed")
            return None
        self.challenger_problems = {k: v for k, v in self.challenger_problems.items() if k != name}
        self._reloaded(name, "challenger", "loaded")
        log.info("shadowing %s with challenger v%s", name, version)
        return predictor

    def _refresh(self, name: str, spec: DatasetSpec) -> None:
        aliases = self._aliases(spec)
        version = aliases.get(CHAMPION)
        challenger = aliases.get(CHALLENGER) if self.with_challenger else None
        if challenger == version:
            challenger = None  # just promoted: nothing else to compare with
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
        served_challenger = old.challenger.ref.version if old and old.challenger else None
        wanted = None if self._failed_challenger.get(name) == challenger else challenger
        if (
            old
            and old.predictor.ref.version == version
            and old.online.snapshot == snapshot
            and served_challenger == wanted
        ):
            return
        predictor = old.predictor if old and old.predictor.ref.version == version else None
        if predictor is None:
            # By the version read above: the alias may move again while this loads.
            ref = registered_ref(self.tracking, model_name(spec), version=version)
            predictor = _one_thread(load_predictor(ref, self.tracking))
            self._reloaded(name, "champion", "loaded")
        online = old.online if old and old.online.snapshot == snapshot else None
        if online is None:
            online = OnlineFeatures(spec, snapshot)
            self._reloaded(name, "snapshot", "loaded")
        shadow = self._challenger(name, spec, challenger, old)
        if old and old.challenger and shadow is None and challenger is None:
            log.info("%s: challenger alias gone or promoted, shadow off", name)
        fresh = Served(spec, predictor, online, dt.datetime.now(dt.UTC), shadow)
        self.served = {**self.served, name: fresh}
        self.problems = {k: v for k, v in self.problems.items() if k != name}
        log.info(
            "serving %s: %s v%s, snapshot %s, challenger %s",
            name,
            model_name(spec),
            predictor.ref.version,
            snapshot.name,
            f"v{shadow.ref.version}" if shadow else "none",
        )


def _one_thread(predictor: RegisteredPredictor) -> RegisteredPredictor:
    """A request is a few rows: XGBoost's thread pool costs more than it saves (on the shared
    2-core box a one-row `predict` took ~50 ms with all threads, contended, vs ~1 ms on one)."""
    model = predictor.model
    if hasattr(model, "get_booster"):
        model.set_params(n_jobs=1)
        model.get_booster().set_param({"nthread": 1})
    predictor.column_scorer  # noqa: B018 - built (and checked) now, not on the first request
    return predictor


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
