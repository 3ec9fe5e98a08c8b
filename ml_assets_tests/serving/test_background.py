"""The background thread's batches, on the real snapshot and the real registered champion:
a batch is shadow-scored in one call per model with the same scores as each request alone, and
a request whose shadow scoring fails is counted and loses no other request's record."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import replace

import numpy as np

import ml_assets.serving.background as background
from ml_assets.core.predictor import load_predictor, registered_ref
from ml_assets.layers.online import store
from ml_assets.layers.online.compute import OnlineFeatures
from ml_assets.layers.requests.log import RequestLog, day_files
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.serving.background import Background, Scored, decide, score_with
from ml_assets.serving.metrics import Metrics
from ml_assets_tests.serving.conftest import MODEL, SCORED_DAY, validated_rows


def test_a_batch_is_shadow_scored_once_and_a_failure_stays_its_own(
    world, tmp_path, monkeypatch
) -> None:
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{world.home / 'data' / 'mlflow' / 'mlflow.db'}"
    )
    ref = registered_ref(tracking, MODEL, alias="champion")
    served, shadow = load_predictor(ref, tracking), load_predictor(ref, tracking)
    online = OnlineFeatures(
        world.spec, store.current_snapshot("flights", world.home / "data" / "online")
    )
    rows = [r["row"] for r in validated_rows(world.home, limit=6)]
    requests = [[rows[0]], rows[1:3], [rows[3]], [rows[4]], [rows[5]]]
    features = [online.compute(r) for r in requests]
    # The fourth request's distance is text: the model raises on any batch holding it.
    broken = features[3]
    text = np.asarray(["not a number"], dtype=object)
    features[3] = replace(broken, columns={**broken.columns, "distance": text})

    calls = []

    def counted(predictor, rows_):
        calls.append(len(rows_))
        return score_with(predictor, rows_)

    monkeypatch.setattr(background, "score_with", counted)
    metrics, log = Metrics(), RequestLog(tmp_path / "requests")
    worker = Background(metrics, log, flush_seconds=60)
    jobs = []
    for request, rows_ in zip(requests, features, strict=True):
        scores = score_with(served, online.compute(request))
        jobs.append(
            Scored(
                dataset="flights",
                request_id=uuid.uuid4().hex,
                received_at=dt.datetime.now(dt.UTC),
                rows=request,
                features=rows_,
                served=served,
                served_by="champion",
                canary_fallback=False,
                scores=scores,
                decisions=decide(served, scores),
                latency_ms=1.0,
                shadow=shadow,
            )
        )
    good = [job for i, job in enumerate(jobs) if i != 3]
    for job in good:  # queued before the thread starts: one batch
        worker.submit(job)
    worker.start()
    deadline = time.monotonic() + 20
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(background.BATCH_SECONDS * 4)
    assert calls == [5]  # one call for the batch's 5 rows
    calls.clear()
    for job in jobs:
        worker.submit(job)
    worker.stop()
    # The batch failed on the broken request, so one call per request after it.
    assert calls == [6, 1, 2, 1, 1, 1]
    records = [
        json.loads(line)
        for path in day_files("flights", SCORED_DAY, tmp_path / "requests")
        for line in path.read_text().splitlines()
    ]
    assert len(records) == 5 + 6  # every row logged, the broken request's too
    by_request = {}
    for record in records:
        by_request.setdefault(record["request_id"], []).append(record)
    for i, job in enumerate(jobs):
        got = [r["shadow_score"] for r in by_request[job.request_id]]
        if i == 3:
            assert got == [None]
            continue
        alone = score_with(shadow, job.features)
        np.testing.assert_allclose(got, np.r_[alone, alone], rtol=0, atol=1e-12)
    errors = metrics.registry.get_sample_value(
        "ml_assets_shadow_errors_total", {"dataset": "flights"}
    )
    assert errors == 1
