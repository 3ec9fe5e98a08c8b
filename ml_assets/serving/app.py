"""The HTTP API: predictions from raw fields, the served model's lineage, batch provenance.

Errors are JSON `{"error": ..., "request_id": ...}` with a status that says whose fault it is
(4xx: the request, naming the field; 503: nothing to serve yet; 500: ours, without detail),
and never a stack trace or a file path. Scoring is one `predict` per request, whatever its rows.

Who answers: the champion, or for a `canary_fraction` share of predict requests the challenger,
falling back to the champion if the challenger raises (counted). Whatever answered, the other
model scores the same rows afterwards in shadow, and every row goes to the request log
(`background.py`); neither is on the response's path.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ml_assets.core.jsonable import json_ready
from ml_assets.layers.online.compute import RequestError
from ml_assets.layers.requests.log import RequestLog
from ml_assets.serving.background import Background, Scored, decide, score_with
from ml_assets.serving.config import ServeSettings
from ml_assets.serving.metrics import Metrics
from ml_assets.serving.payloads import PayloadError, invocation_rows, predict_rows
from ml_assets.serving.state import Poller, Served, ServingState, model_name

log = logging.getLogger("ml_assets.serving")


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


def _plain(value: Any) -> Any:
    """JSON-ready: NaN as null, timestamps and dates as ISO text."""
    return json.loads(json.dumps(json_ready(value), default=lambda v: v.isoformat()))


def _error(request: Request, status: int, message: str, detail: Any = None) -> JSONResponse:
    body = {"error": message, "request_id": request.state.request_id}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status)


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is refused with 413 before it is parsed
    (declared by Content-Length or, chunked, counted as it arrives)."""

    def __init__(self, app: Callable, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Callable) -> None:
        body = json.dumps({"error": f"request body over {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class RequestIds:
    """ASGI middleware: a request id on every request (`request.state.request_id`, and the
    `x-request-id` response header), the request counts and latencies of the scored endpoints,
    and a plain 500 for anything that escaped the handlers (logged, never echoed).

    Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs each
    request through a task group and a streamed copy of the response, about 0.5 ms of CPU a
    request here, where one predict request is ~8 ms."""

    def __init__(self, app: Callable, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        scored = _scored_path(scope["path"])
        started = time.perf_counter()
        status = [500]
        sent = [False]

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0], sent[0] = message["status"], True
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request %s failed", request_id)
            if not sent[0]:
                body = json.dumps({"error": "internal error", "request_id": request_id}).encode()
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        if scored is not None:
            dataset, endpoint = scored
            labels = state.get("metric_labels") or (dataset, "", "", "")
            self.metrics.requests.labels(*labels, str(status[0])).inc()
            self.metrics.latency.labels(labels[0], endpoint).observe(time.perf_counter() - started)


def _scored_path(path: str) -> tuple[str, str] | None:
    """(dataset, endpoint) of a predict or invocations path, else None."""
    parts = path.strip("/").split("/")
    if parts == ["invocations"]:
        return "", "invocations"
    if len(parts) == 3 and parts[0] == "v1" and parts[2] in {"predict", "invocations"}:
        return parts[1], parts[2]
    return None


def create_app(
    state: ServingState,
    config: ServeSettings,
    *,
    poll: bool = True,
    request_log: RequestLog | None = None,
) -> FastAPI:
    """The app over `state`; with `poll`, a background poller hot-reloads champions.

    Predictions go to `request_log` (default: `data/online/requests/`) unless the settings
    turn the log off.
    """
    metrics = Metrics()
    state.on_reload = lambda ds, role, outcome: metrics.reloads.labels(ds, role, outcome).inc()
    state.with_challenger = config.shadow or config.canary_fraction > 0
    written = (request_log or RequestLog()) if config.request_log else None
    background = Background(metrics, written, config.log_flush_seconds)
    canary_draw = random.Random()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        state.refresh()
        background.start()
        poller = Poller(state, config.poll_seconds) if poll else None
        if poller:
            poller.start()
        yield
        if poller:
            poller.stop()
        background.stop()

    app = FastAPI(title="ml_assets serving", lifespan=lifespan, docs_url=None, redoc_url=None)

    app.add_middleware(RequestIds, metrics=metrics)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(request, exc.status, exc.message, exc.detail)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        detail = [{"row": e.row, "field": e.field, "error": e.error} for e in exc.errors[:50]]
        return _error(request, 422, str(exc), detail)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, 404, "not found")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, 405, "method not allowed")

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)

    def authorize(request: Request) -> None:
        if config.token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.encode(), config.token.encode()
        ):
            raise ApiError(401, "missing or wrong API token (Authorization: Bearer <token>)")

    def served(dataset: str) -> Served:
        current = state.served.get(dataset)  # taken once: the request keeps this version
        if current is not None:
            return current
        if dataset not in state.specs:
            raise ApiError(404, f"unknown dataset '{dataset}'", {"datasets": sorted(state.specs)})
        raise ApiError(
            503, f"dataset '{dataset}' is not served: {state.problems.get(dataset, 'loading')}"
        )

    async def body(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the body is not valid JSON") from None

    def score(current: Served, rows: list[dict], request: Request, *, canary: bool) -> dict:
        started = time.perf_counter()
        received_at = dt.datetime.now(dt.UTC)
        dataset = current.spec.name
        champion, challenger = current.predictor, current.challenger
        request.state.metric_labels = (dataset, champion.ref.registered_name, "", "champion")
        if len(rows) > config.max_batch_rows:
            raise ApiError(413, f"{len(rows)} rows: at most {config.max_batch_rows} per request")
        # With the concurrent requests' rows in one statement (`OnlineFeatures.compute_combined`).
        features = current.online.compute_combined(rows)
        answering, served_by, fallback = champion, "champion", False
        scores = None
        if canary and challenger is not None and canary_draw.random() < config.canary_fraction:
            try:
                scores = score_with(challenger, features)
                answering, served_by = challenger, "canary"
            except Exception:
                log.exception(
                    "canary: challenger v%s failed, champion answers", challenger.ref.version
                )
                metrics.canary_fallbacks.labels(dataset, challenger.ref.version).inc()
                fallback = True
        if scores is None:
            scores = score_with(champion, features)  # one call per batch
        ref = answering.ref
        threshold = answering.threshold
        decisions = decide(answering, scores)
        request.state.metric_labels = (dataset, ref.registered_name, ref.version, served_by)
        metrics.rows.labels(dataset, ref.version).inc(len(scores))
        shadow = (challenger if served_by == "champion" else champion) if config.shadow else None
        if shadow is not None or written is not None:
            background.submit(
                Scored(
                    dataset=dataset,
                    request_id=request.state.request_id,
                    received_at=received_at,
                    rows=rows,
                    features=features,
                    served=answering,
                    served_by=served_by,
                    canary_fallback=fallback,
                    scores=scores,
                    decisions=decisions,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    shadow=shadow,
                )
            )
        return {
            "request_id": request.state.request_id,
            "model": {"name": ref.registered_name, "version": ref.version},
            "decision_threshold": threshold,
            "served_by": served_by,
            "snapshot_as_of": current.online.manifest["as_of"],
            "predictions": [
                {"key": k, "score": float(s), "decision": d}
                for k, s, d in zip(features.keys, np.asarray(scores), decisions, strict=True)
            ],
        }

    @app.get("/health")
    def health() -> dict:
        return {
            "status": "ok" if state.served else "no models",
            "datasets": {
                name: (
                    {
                        "model_version": s.predictor.ref.version,
                        "challenger_version": s.challenger.ref.version if s.challenger else None,
                        "challenger_problem": state.challenger_problems.get(name),
                        "snapshot": s.online.snapshot.name,
                        "as_of": s.online.manifest["as_of"],
                    }
                    if (s := state.served.get(name))
                    else {"problem": state.problems.get(name, "loading")}
                )
                for name in state.specs
            },
        }

    @app.post("/v1/{dataset}/predict")
    async def predict(dataset: str, request: Request) -> dict:
        authorize(request)
        current = served(dataset)
        try:
            rows = predict_rows(await body(request))
        except PayloadError as exc:
            raise ApiError(400, str(exc)) from None
        # On a worker thread: DuckDB computes the features without the GIL, so the event loop
        # reads the next request meanwhile and the second core is used.
        return await run_in_threadpool(score, current, rows, request, canary=True)

    async def invocations(dataset: str | None, request: Request) -> dict:
        authorize(request)
        if dataset is None:
            if len(state.specs) != 1:
                raise ApiError(400, "several datasets are served: POST /v1/<dataset>/invocations")
            (dataset,) = state.specs
        current = served(dataset)
        try:
            rows = invocation_rows(await body(request))
        except PayloadError as exc:
            raise ApiError(400, str(exc)) from None
        # MLflow clients expect one model's answers: the canary is for the predict endpoint.
        out = await run_in_threadpool(score, current, rows, request, canary=False)
        return {"predictions": [p["score"] for p in out["predictions"]]}

    @app.post("/invocations")
    async def invocations_default(request: Request) -> dict:
        return await invocations(None, request)

    @app.post("/v1/{dataset}/invocations")
    async def invocations_dataset(dataset: str, request: Request) -> dict:
        return await invocations(dataset, request)

    @app.get("/metrics")
    def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/v1/{dataset}/model")
    def model(dataset: str) -> dict:
        current = served(dataset)
        ref = current.predictor.ref
        version = state.tracking.client().get_model_version(ref.registered_name, ref.version)
        return _plain(
            {
                "name": ref.registered_name,
                "version": ref.version,
                "alias": "champion",
                "family": ref.family,
                "task": ref.task,
                "features": list(ref.features),
                "decision_threshold": current.predictor.threshold,
                "mlflow_run_id": ref.run_id,
                "training_window": list(ref.train_window),
                "data_version": ref.data_version,
                "training_dagster_run_id": version.tags.get("dagster_run_id"),
                "promoted_at": version.tags.get("promoted_at"),
                "loaded_at": current.loaded_at.isoformat(),
                "snapshot": {
                    "name": current.online.snapshot.name,
                    "as_of": current.online.manifest["as_of"],
                    "history_start": current.online.manifest["history_start"],
                },
            }
        )

    @app.get("/v1/{dataset}/provenance/{key}")
    def provenance(dataset: str, key: str) -> dict:
        current = served(dataset)
        path = current.online.snapshot / "provenance.parquet"
        if not path.exists():
            raise ApiError(404, f"no batch predictions in the snapshot of '{dataset}'")
        rows = pq.read_table(path, filters=[("_key", "=", key)]).to_pylist()
        if not rows:
            raise ApiError(404, f"no batch prediction for key '{key}' in the snapshot")
        row = max(rows, key=lambda r: r["_partition_date"])
        version = state.tracking.client().get_model_version(row["model_name"], row["model_version"])
        return _plain(
            {
                "prediction": row,
                "model": {
                    "name": row["model_name"],
                    "version": row["model_version"],
                    "mlflow_run_id": row["mlflow_run_id"],
                    "training_window": version.tags.get("train_window"),
                    "data_version": version.tags.get("data_version"),
                },
                "snapshot": current.online.snapshot.name,
            }
        )

    return app


__all__ = ["create_app", "model_name"]
