"""Serving settings, from the environment or the command line; safe when nothing is set."""

from __future__ import annotations

import os
from dataclasses import dataclass

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_ENV = "ML_ASSETS_API_TOKEN"
_OFF = {"0", "false", "no", "off"}


class UnsafeConfig(ValueError):
    """The service was asked to run in a way that would expose it unprotected."""


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    # Seconds between registry and snapshot polls: how long a moved `champion` may go unserved.
    poll_seconds: float = 5.0
    max_body_bytes: int = 1_000_000
    max_batch_rows: int = 1_000
    token: str | None = None  # required on predict endpoints when set
    # Score every request with the `challenger` too, in the background (never returned).
    shadow: bool = True
    # Share of predict requests the challenger answers (0: none); a failure falls back.
    canary_fraction: float = 0.0
    # Append every prediction to data/online/requests/ (the `online_requests` asset's input).
    request_log: bool = True
    # Seconds between request-log writes: how stale the log on disk may be.
    log_flush_seconds: float = 2.0
    # uvicorn's line per request on stderr: off, as the request log and /metrics hold the same
    # (at 200 requests/s it was a tenth of the server's CPU and a scrolling console).
    access_log: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> ServeSettings:
        env = os.environ
        values: dict[str, object] = {
            "host": env.get("ML_ASSETS_SERVE_HOST", cls.host),
            "port": int(env.get("ML_ASSETS_SERVE_PORT", cls.port)),
            "poll_seconds": float(env.get("ML_ASSETS_SERVE_POLL_SECONDS", cls.poll_seconds)),
            "max_body_bytes": int(env.get("ML_ASSETS_SERVE_MAX_BODY_BYTES", cls.max_body_bytes)),
            "max_batch_rows": int(env.get("ML_ASSETS_SERVE_MAX_BATCH_ROWS", cls.max_batch_rows)),
            "token": env.get(TOKEN_ENV) or None,
            "shadow": env.get("ML_ASSETS_SERVE_SHADOW", "1").lower() not in _OFF,
            "canary_fraction": float(
                env.get("ML_ASSETS_SERVE_CANARY_FRACTION", cls.canary_fraction)
            ),
            "request_log": env.get("ML_ASSETS_SERVE_REQUEST_LOG", "1").lower() not in _OFF,
            "log_flush_seconds": float(
                env.get("ML_ASSETS_SERVE_LOG_FLUSH_SECONDS", cls.log_flush_seconds)
            ),
            "access_log": env.get("ML_ASSETS_SERVE_ACCESS_LOG", "0").lower() not in _OFF,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Off loopback, predictions need a token: refuse to start without one."""
        if not 0.0 <= self.canary_fraction <= 1.0:
            raise ValueError(f"canary fraction {self.canary_fraction} is not in [0, 1]")
        if self.host not in LOOPBACK and not self.token:
            raise UnsafeConfig(
                f"binding to {self.host} exposes the service beyond this machine: set "
                f"{TOKEN_ENV} (clients then send 'Authorization: Bearer <token>')"
            )
