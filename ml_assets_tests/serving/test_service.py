"""The real service (uvicorn subprocess) against a real MLflow store and a real snapshot."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx
import pytest
from mlflow import MlflowClient

from ml_assets.layers.evaluate.gates import Verdict
from ml_assets.layers.promote.registry import promote, rollback
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.conftest import REPO
from ml_assets_tests.serving.conftest import MODEL, start_service, stop, validated_rows

pytestmark = pytest.mark.slow


def test_prediction_equals_batch_scoring(world, service) -> None:
    rows = validated_rows(world.home, limit=20)
    with service.client() as client:
        one = client.post("/v1/flights/predict", json=rows[0]["row"])
        batch = client.post("/v1/flights/predict", json={"rows": [r["row"] for r in rows]})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == {"name": MODEL, "version": "1"} and body["request_id"]
    (p,) = body["predictions"]
    assert p["key"] == rows[0]["key"]
    assert p["score"] == pytest.approx(rows[0]["score"], abs=1e-9)
    assert p["decision"] == (p["score"] >= body["decision_threshold"])
    assert batch.status_code == 200, batch.text
    got = batch.json()["predictions"]
    assert [g["key"] for g in got] == [r["key"] for r in rows]
    for g, r in zip(got, rows, strict=True):
        assert g["score"] == pytest.approx(r["score"], abs=1e-9), r["key"]


def test_validation_errors_name_the_field(world, service) -> None:
    row = validated_rows(world.home, limit=1)[0]["row"]
    cases = {
        "origin": ({**row, "origin": "BOS"}, "allowed"),
        "day": ({**row, "day": 40}, "range"),
        "month": ({**row, "month": "May"}, "INTEGER"),
        "carrier": ({k: v for k, v in row.items() if k != "carrier"}, "required"),
        "arr_delay": ({**row, "arr_delay": 3.0}, "label"),
        "colour": ({**row, "colour": "red"}, "unknown"),
    }
    with service.client() as client:
        for field, (bad, word) in cases.items():
            response = client.post("/v1/flights/predict", json=bad)
            assert response.status_code == 422, (field, response.text)
            body = response.json()
            assert f"'{field}'" in body["error"] and word in body["error"], body
            assert body["detail"][0]["field"] == field
            assert "Traceback" not in response.text and "/tmp" not in response.text
        assert client.post("/v1/flights/predict", content=b"{nope").status_code == 400


def test_unknown_dataset_and_limits(world, service) -> None:
    row = validated_rows(world.home, limit=1)[0]["row"]
    with service.client() as client:
        missing = client.post("/v1/trains/predict", json=row)
        assert missing.status_code == 404 and "unknown dataset 'trains'" in missing.json()["error"]
        too_many = client.post("/v1/flights/predict", json={"rows": [row] * 1001})
        assert too_many.status_code == 413 and "at most 1000" in too_many.json()["error"]
        huge = client.post("/v1/flights/predict", content=b"[" + b" " * 2_000_000 + b"]")
        assert huge.status_code == 413
        assert client.get("/health").json()["datasets"]["flights"]["model_version"] == "1"


def test_mlflow_invocations_payloads(world, service) -> None:
    rows = validated_rows(world.home, limit=3)
    records = [r["row"] for r in rows]
    columns = list(records[0])
    payloads = [
        {"dataframe_records": records},
        {
            "dataframe_split": {
                "columns": columns,
                "data": [[r[c] for c in columns] for r in records],
            }
        },
        {"inputs": records},
        {"inputs": {c: [r[c] for r in records] for c in columns}},
    ]
    with service.client() as client:
        for payload in payloads:
            response = client.post("/invocations", json=payload)
            assert response.status_code == 200, response.text
            assert response.json()["predictions"] == pytest.approx([r["score"] for r in rows])
        assert client.post("/invocations", json={"rows": records}).status_code == 400


def test_model_and_provenance(world, service) -> None:
    row = validated_rows(world.home, limit=1)[0]
    with service.client() as client:
        model = client.get("/v1/flights/model").json()
        chain = client.get(f"/v1/flights/provenance/{row['key']}")
        assert client.get("/v1/flights/provenance/nope").status_code == 404
    assert model["version"] == "1" and model["mlflow_run_id"] and model["data_version"]
    assert model["training_window"][1] == "2013-03-09"
    assert chain.status_code == 200, chain.text
    body = chain.json()
    assert body["prediction"]["score"] == pytest.approx(row["score"])
    assert body["prediction"]["_source_checksum"] and body["model"]["mlflow_run_id"]


def test_token_required_when_set_and_off_loopback(world) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "ml_assets.serving", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "ML_ASSETS_HOME": str(world.home)},
        timeout=120,
    )
    assert refused.returncode == 2 and "ML_ASSETS_API_TOKEN" in refused.stderr
    guarded = start_service(world.home, world.spec_dir, ML_ASSETS_API_TOKEN="s3cret")
    try:
        row = validated_rows(world.home, limit=1)[0]["row"]
        with guarded.client() as anonymous, guarded.client("wrong") as wrong:
            assert anonymous.post("/v1/flights/predict", json=row).status_code == 401
            assert wrong.post("/v1/flights/predict", json=row).status_code == 401
            assert anonymous.post("/invocations", json={"inputs": [row]}).status_code == 401
            assert anonymous.get("/health").status_code == 200
        with guarded.client("s3cret") as client:
            assert client.post("/v1/flights/predict", json=row).status_code == 200
    finally:
        stop(guarded)


def _copy_version(client: MlflowClient, version: str) -> str:
    """A second registered version from the same logged model (a retrain would take minutes)."""
    v = client.get_model_version(MODEL, version)
    tags = {k: val for k, val in v.tags.items() if k not in {"promoted_at", "previous_champion"}}
    return str(client.create_model_version(MODEL, v.source, run_id=v.run_id, tags=tags).version)


def test_hot_reload_after_promotion_and_rollback(world, tmp_path) -> None:
    import shutil

    home = tmp_path / "home"
    shutil.copytree(world.home, home, ignore=shutil.ignore_patterns("serve-*.log"))
    tracking = MlflowTracking(tracking_uri=f"sqlite:///{home / 'data' / 'mlflow' / 'mlflow.db'}")
    running = start_service(home, world.spec_dir)
    row = validated_rows(home, limit=1)[0]["row"]
    failures, versions, stop_flag = [], set(), threading.Event()

    def hammer() -> None:
        with running.client() as client:
            while not stop_flag.is_set():
                response = client.post("/v1/flights/predict", json=row)
                if response.status_code != 200:
                    failures.append(response.text)
                else:
                    versions.add(response.json()["model"]["version"])

    def served_version(expected: str, bound: float = 15.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < bound:
            if httpx.get(f"{running.url}/v1/flights/model").json()["version"] == expected:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"version {expected} not served within {bound} s")

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        new = _copy_version(tracking.client(), "1")
        promote(tracking, MODEL, new, Verdict(True, (), (), "test promotion"))
        promoted_after = served_version(new)
        rollback(tracking, MODEL, None, "test rollback")
        rolled_back_after = served_version("1")
    finally:
        stop_flag.set()
        worker.join()
        stop(running)
    assert failures == []
    assert versions == {"1", new}
    print(
        f"reload after promotion {promoted_after:.2f} s, after rollback {rolled_back_after:.2f} s"
    )
