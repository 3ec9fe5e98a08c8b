"""Prometheus metrics of the service (`GET /metrics`), on a registry of its own.

A registry per app rather than the process-global default, so two apps in one process (tests)
never collide on metric names, and `/metrics` shows only what this service counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds. Dense below 10 ms, where the single-row target is, then up to a slow batch.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "ml_assets_predict_requests",
            "Prediction requests by dataset, model, version, who answered and HTTP status.",
            ["dataset", "model", "version", "served_by", "status"],
            registry=r,
        )
        self.rows = Counter(
            "ml_assets_predict_rows", "Rows scored, by dataset and version.",
            ["dataset", "version"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "ml_assets_predict_latency_seconds",
            "Time to answer a prediction request (features + model), by dataset.",
            ["dataset", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.shadow_rows = Counter(
            "ml_assets_shadow_rows", "Rows scored in shadow by the challenger.",
            ["dataset", "champion_version", "challenger_version"], registry=r,
        )  # fmt: skip
        self.shadow_disagreements = Counter(
            "ml_assets_shadow_disagreements",
            "Shadow rows whose challenger decision differed from the served decision.",
            ["dataset", "champion_version", "challenger_version"],
            registry=r,
        )
        self.shadow_errors = Counter(
            "ml_assets_shadow_errors", "Shadow scorings that raised.", ["dataset"], registry=r
        )
        self.shadow_dropped = Counter(
            "ml_assets_shadow_dropped",
            "Requests not shadowed or logged because the background queue was full.",
            ["dataset"],
            registry=r,
        )
        self.canary_fallbacks = Counter(
            "ml_assets_canary_fallbacks",
            "Canary requests the challenger failed, answered by the champion instead.",
            ["dataset", "challenger_version"],
            registry=r,
        )
        self.reloads = Counter(
            "ml_assets_model_reloads",
            "Models or snapshots swapped in by the hot-reload poller (or failed to).",
            ["dataset", "role", "outcome"],
            registry=r,
        )
        self.logged_rows = Counter(
            "ml_assets_request_log_rows", "Rows written to the request log.", ["dataset"],
            registry=r,
        )  # fmt: skip

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
