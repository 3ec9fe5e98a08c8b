"""After the response: shadow scoring and the request log, on one background thread.

The request path hands each scored request to a bounded queue and returns; this thread scores
the same feature rows with the other model (the `challenger` when the champion answered, the
champion when a canary request was answered by the challenger), logs the comparison (both
scores and decisions, whether they agree) and appends one record per row to the request log,
written every `flush_seconds`. Nothing here can slow or fail a response: a full queue drops the
work (counted) and a shadow model that raises is counted and logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_assets.core.predictor import RegisteredPredictor
from ml_assets.layers.online.compute import FeatureRows
from ml_assets.layers.requests.log import RequestLog
from ml_assets.serving.metrics import Metrics

log = logging.getLogger("ml_assets.serving.shadow")

QUEUE_LIMIT = 10_000


@dataclass(frozen=True)
class Scored:
    """One answered request: what it asked, who answered, what was answered, how fast."""

    dataset: str
    request_id: str
    received_at: dt.datetime
    rows: list[dict]
    features: FeatureRows  # the request's feature rows
    served: RegisteredPredictor
    served_by: str  # champion | canary (the challenger answered)
    canary_fallback: bool  # a canary request the challenger failed, answered by the champion
    scores: np.ndarray
    decisions: list[bool | None]
    latency_ms: float
    shadow: RegisteredPredictor | None  # the model that did not answer, if any


def decide(predictor: RegisteredPredictor, scores: np.ndarray) -> list[bool | None]:
    threshold = predictor.threshold
    return [None] * len(scores) if threshold is None else (scores >= threshold).tolist()


def score_with(predictor: RegisteredPredictor, features: FeatureRows) -> np.ndarray:
    """`predictor`'s scores of the feature rows (its own features, in its own order)."""
    return np.asarray(predictor.predict_columns(features.columns), dtype="float64")


class Background:
    """The queue and its thread. `submit` never blocks; `stop` drains, then writes the log."""

    def __init__(
        self, metrics: Metrics, request_log: RequestLog | None, flush_seconds: float
    ) -> None:
        self.metrics, self.request_log, self.flush_seconds = metrics, request_log, flush_seconds
        self._queue: queue.Queue[Scored | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._run, name="serving-shadow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Scored) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.metrics.shadow_dropped.labels(job.dataset).inc()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_seconds
        while True:
            try:
                job = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                job = False
            if job is None:
                break
            if job is not False:
                try:
                    self._handle(job)
                except Exception:  # never let one request stop the thread
                    log.exception("background work for request %s failed", job.request_id)
            if time.monotonic() >= next_flush:
                self._flush()
                next_flush = time.monotonic() + self.flush_seconds
        self._flush()

    def _flush(self) -> None:
        if self.request_log is None:
            return
        try:
            self.request_log.flush()
        except Exception:
            log.exception("request log write failed")

    def _shadow(self, job: Scored) -> tuple[np.ndarray | None, list[bool | None] | None]:
        if job.shadow is None:
            return None, None
        try:
            scores = score_with(job.shadow, job.features)
        except Exception:
            self.metrics.shadow_errors.labels(job.dataset).inc()
            log.exception("shadow scoring by v%s failed", job.shadow.ref.version)
            return None, None
        return scores, decide(job.shadow, scores)

    def _handle(self, job: Scored) -> None:
        shadow_scores, shadow_decisions = self._shadow(job)
        n = len(job.scores)
        agree: list[bool | None] = [None] * n
        if shadow_scores is not None:
            agree = [
                None if a is None or b is None else a == b
                for a, b in zip(job.decisions, shadow_decisions, strict=True)
            ]
            champion, challenger = (
                (job.shadow, job.served) if job.served_by == "canary" else (job.served, job.shadow)
            )
            labels = (job.dataset, champion.ref.version, challenger.ref.version)
            self.metrics.shadow_rows.labels(*labels).inc(n)
            self.metrics.shadow_disagreements.labels(*labels).inc(sum(a is False for a in agree))
            log.info(
                "shadow %s request %s: served %s v%s scores %s decisions %s; "
                "shadow v%s scores %s decisions %s; agree %s",
                job.dataset,
                job.request_id,
                job.served_by,
                job.served.ref.version,
                [round(float(s), 6) for s in job.scores],
                job.decisions,
                job.shadow.ref.version,
                [round(float(s), 6) for s in shadow_scores],
                shadow_decisions,
                agree,
            )
        if self.request_log is None:
            return
        ref = job.served.ref
        received = job.received_at.isoformat()
        records = []
        for i, (key, event_time) in enumerate(
            zip(job.features.keys, job.features.event_times, strict=True)
        ):
            event = pd.Timestamp(event_time)
            records.append(
                {
                    "request_id": job.request_id,
                    "received_at": received,
                    "day": event.date().isoformat(),
                    "dataset": job.dataset,
                    "key": key,
                    "event_time": event.isoformat(),
                    "model_name": ref.registered_name,
                    "model_version": ref.version,
                    "served_by": job.served_by,
                    "canary_fallback": job.canary_fallback,
                    "fields": job.rows[i],
                    "score": float(job.scores[i]),
                    "decision": job.decisions[i],
                    "decision_threshold": job.served.threshold,
                    "latency_ms": job.latency_ms,
                    "request_rows": n,
                    "shadow_model_version": None if job.shadow is None else job.shadow.ref.version,
                    "shadow_score": None if shadow_scores is None else float(shadow_scores[i]),
                    "shadow_decision": None if shadow_decisions is None else shadow_decisions[i],
                    "shadow_agree": agree[i],
                }
            )
        self.request_log.append(job.dataset, records)
        self.metrics.logged_rows.labels(job.dataset).inc(n)
