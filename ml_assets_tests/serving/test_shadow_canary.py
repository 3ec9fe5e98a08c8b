"""Shadow, canary, `/metrics` and the request log, on the real service (uvicorn subprocess),
a real MLflow store and a real snapshot; the log then goes through the real Dagster assets."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import mlflow
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import roc_auc_score

from ml_assets.automation.shadow_gate import open_trial_request
from ml_assets.core.predictor import CHALLENGER, FEATURE_SCHEMA, current_champion
from ml_assets.core.spec import load_spec, read_spec_mapping, write_spec
from ml_assets.definitions import build_defs
from ml_assets.layers.promote.audit import decisions
from ml_assets.layers.requests.log import day_files
from ml_assets.layers.train.tracking import SKOPS_TRUSTED_TYPES
from ml_assets.replay import candidate_version, training_outcome
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets_tests.serving.conftest import MODEL, SCORED_DAY, start_service, stop, validated_rows

pytestmark = pytest.mark.slow


def copy_home(world, tmp_path: Path) -> tuple[Path, MlflowTracking]:
    home = tmp_path / "home"
    # Without the request log of the session's service (other tests' requests).
    shutil.copytree(world.home, home, ignore=shutil.ignore_patterns("serve-*.log", "requests"))
    uri = f"sqlite:///{home / 'data' / 'mlflow' / 'mlflow.db'}"
    artifacts = (home / "data" / "mlflow" / "artifacts").as_uri()
    return home, MlflowTracking(tracking_uri=uri, artifact_root=artifacts)


def challenger_from_v1(tracking: MlflowTracking, *, threshold: float, ghost: bool = False) -> str:
    """A new registered version of the champion's model, relogged with its metadata changed:
    another decision threshold, and with `ghost` a feature no snapshot has (it then loads but
    fails to score). The `challenger` alias is pointed at it."""
    client = tracking.client()
    v1 = client.get_model_version(MODEL, "1")
    uri = f"models:/{MODEL}/1"
    metadata = dict(mlflow.models.get_model_info(uri).metadata)
    metadata["decision_threshold"] = {**metadata["decision_threshold"], "value": threshold}
    if ghost:
        schema = dict(metadata[FEATURE_SCHEMA])
        schema["features"] = [*schema["features"], "ghost_feature"]
        metadata[FEATURE_SCHEMA] = schema
    experiment = tracking.experiment_id("ml_assets/test_challengers")
    with mlflow.start_run(experiment_id=experiment, run_name="test challenger") as run:
        if v1.tags["family"] == "xgboost":
            logged = mlflow.xgboost.log_model(
                mlflow.xgboost.load_model(uri), name="model", model_format="json", metadata=metadata
            )
        else:
            logged = mlflow.sklearn.log_model(
                mlflow.sklearn.load_model(uri),
                name="model",
                metadata=metadata,
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
            )
    tags = {k: v for k, v in v1.tags.items() if k not in {"promoted_at", "previous_champion"}}
    version = client.create_model_version(
        MODEL, logged.model_uri, run_id=run.info.run_id, tags=tags
    ).version
    client.set_registered_model_alias(MODEL, CHALLENGER, str(version))
    return str(version)


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    )


def logged(home: Path, rows: int, bound: float = 20.0) -> list[dict]:
    """The request log's records of the scored day, once at least `rows` are on disk."""
    root = home / "data" / "online" / "requests"
    deadline = time.monotonic() + bound
    while True:
        records = [
            json.loads(line)
            for path in day_files("flights", SCORED_DAY, root)
            for line in path.read_text().splitlines()
        ]
        if len(records) >= rows or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def wait_for_challenger(url: str, version: str | None, bound: float = 20.0) -> dict:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        health = httpx.get(f"{url}/health").json()["datasets"]["flights"]
        if health.get("challenger_version") == version:
            return health
        time.sleep(0.2)
    raise AssertionError(f"challenger {version} not loaded: {health}")


def test_shadow_scores_are_logged_and_ingested(world, tmp_path, monkeypatch) -> None:
    home, tracking = copy_home(world, tmp_path)
    rows = validated_rows(home, limit=12)
    # The same model at another threshold (the rows' median score): the shadow's decisions split
    # the rows in half, which only a shadow scored with *its* threshold shows.
    cut = sorted(r["score"] for r in rows)[6]
    shadow_version = challenger_from_v1(tracking, threshold=cut)
    running = start_service(home, world.spec_dir, ML_ASSETS_SERVE_LOG_FLUSH_SECONDS="0.2")
    try:
        wait_for_challenger(running.url, shadow_version)
        answers = []
        with running.client() as client:
            for r in rows[:8]:
                answers.append(client.post("/v1/flights/predict", json=r["row"]))
            answers.append(
                client.post("/v1/flights/predict", json={"rows": [r["row"] for r in rows[8:]]})
            )
            assert client.post("/v1/flights/predict", json={"month": 1}).status_code == 422
        records = logged(home, len(rows))
        text = httpx.get(f"{running.url}/metrics").text
    finally:
        stop(running)
    predictions = []
    for answer in answers:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"]["version"] == "1" and body["served_by"] == "champion"
        predictions += [(body["request_id"], p) for p in body["predictions"]]
    for (_, p), r in zip(predictions, rows, strict=True):
        assert p["key"] == r["key"] and p["score"] == pytest.approx(r["score"], abs=1e-9)
    disagree = sum(p["decision"] != (p["score"] >= cut) for _, p in predictions)
    assert 0 < disagree < len(rows), "the sample needs both outcomes"

    by_key = {r["key"]: r for r in records}
    assert len(records) == len(rows) and set(by_key) == {r["key"] for r in rows}
    for request_id, p in predictions:
        record = by_key[p["key"]]
        assert record["request_id"] == request_id and record["model_version"] == "1"
        assert (
            record["served_by"] == "champion" and record["shadow_model_version"] == shadow_version
        )
        assert record["score"] == pytest.approx(p["score"]) and record["decision"] == p["decision"]
        assert record["shadow_score"] == pytest.approx(p["score"])  # same model, other threshold
        assert record["shadow_decision"] is (p["score"] >= cut)
        assert record["shadow_agree"] is (p["decision"] == (p["score"] >= cut))
        assert record["day"] == SCORED_DAY.isoformat() and record["fields"]["origin"]
    service_log = "".join(p.read_text() for p in home.glob("serve-*.log"))
    assert f"request {predictions[0][0]}: served champion v1" in service_log

    assert metric(text, "ml_assets_shadow_rows_total", challenger_version=shadow_version) == 12
    assert metric(text, "ml_assets_shadow_disagreements_total") == disagree
    ok = {"dataset": "flights", "model": MODEL, "version": "1", "status": "200"}
    assert metric(text, "ml_assets_predict_requests_total", **ok) == 9
    assert metric(text, "ml_assets_predict_requests_total", status="422") == 1
    assert metric(text, "ml_assets_predict_latency_seconds_count", endpoint="predict") == 10
    assert metric(text, "ml_assets_model_reloads_total", role="challenger", outcome="loaded") == 1

    # The log into the warehouse: the day's rows, and a rerun replaces rather than appends.
    monkeypatch.setenv("ML_ASSETS_HOME", str(home))
    job = build_defs([world.spec]).resolve_job_def(world.spec.names.job("online_log"))
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):
            result = job.execute_in_process(instance=instance, partition_key=SCORED_DAY.isoformat())
            assert result.success
    with duckdb.connect(str(home / "data" / "warehouse" / "warehouse.duckdb")) as conn:
        stored = conn.execute(
            "SELECT _key, score, shadow_score, shadow_agree, served_by, fields "
            "FROM flights.online_requests WHERE _partition_date = ? ORDER BY _key",
            [SCORED_DAY],
        ).fetchall()
        summary = conn.execute(
            "SELECT requests, rows, shadow_rows, shadow_agreement, score_mean, latency_p99_ms "
            "FROM flights.online_summary WHERE day = ?",
            [SCORED_DAY],
        ).fetchall()
    assert [s[0] for s in stored] == sorted(by_key)
    for key, score, shadow, agree, served_by, fields in stored:
        assert score == pytest.approx(by_key[key]["score"]) and served_by == "champion"
        assert shadow == pytest.approx(by_key[key]["shadow_score"])
        assert agree is by_key[key]["shadow_agree"]
        assert json.loads(fields) == by_key[key]["fields"]
    ((requests, n, shadow_rows, agreement, score_mean, p99),) = summary
    assert (requests, n, shadow_rows) == (9, 12, 12)
    assert agreement == pytest.approx(1 - disagree / 12)
    assert score_mean == pytest.approx(sum(p["score"] for _, p in predictions) / 12)
    assert p99 > 0

    # Online traffic under monitoring: the labels of the day have arrived (a day's delay), so
    # its realized AUC is the AUC of the served scores against them; every key was also scored
    # in batch by v1, alike; the drift reference is v1's batch scores of the day.
    with duckdb.connect(str(home / "data" / "warehouse" / "warehouse.duckdb")) as conn:
        judged = conn.execute(
            "SELECT model_version, rows, labelled_rows, metric, metric_value, batch_matched_rows, "
            "reference_rows, score_drift_method FROM flights.online_performance WHERE day = ?",
            [SCORED_DAY],
        ).fetchall()
        labels = dict(
            conn.execute(
                "SELECT _key, _label FROM flights.features "
                "WHERE _partition_date = ? AND _label IS NOT NULL",
                [SCORED_DAY],
            ).fetchall()
        )
        (batch_rows,) = conn.execute(
            "SELECT count(*) FROM flights.predictions WHERE _partition_date = ?", [SCORED_DAY]
        ).fetchone()
    ((version, n, labelled, name, value, alike, reference, method),) = judged
    scored = [(labels[p["key"]], p["score"]) for _, p in predictions if p["key"] in labels]
    assert (version, n, labelled, name) == ("1", 12, len(scored), "roc_auc")
    assert value == pytest.approx(roc_auc_score(*zip(*scored, strict=True)))
    assert (alike, reference) == (12, batch_rows) and method in {"ks", "wasserstein"}


def test_canary_falls_back_then_answers(world, tmp_path) -> None:
    home, tracking = copy_home(world, tmp_path)
    broken = challenger_from_v1(tracking, threshold=0.0, ghost=True)
    running = start_service(
        home,
        world.spec_dir,
        ML_ASSETS_SERVE_CANARY_FRACTION="1",
        ML_ASSETS_SERVE_LOG_FLUSH_SECONDS="0.2",
    )
    rows = validated_rows(home, limit=4)
    try:
        wait_for_challenger(running.url, broken)
        with running.client() as client:
            fallback = [client.post("/v1/flights/predict", json=r["row"]) for r in rows]
            # A new challenger that scores: the poller swaps it in; the canary now answers.
            working = challenger_from_v1(tracking, threshold=0.0)
            wait_for_challenger(running.url, working)
            canary = [client.post("/v1/flights/predict", json=r["row"]) for r in rows]
            # MLflow clients get the champion: the canary is for the predict endpoint.
            invoked = client.post("/invocations", json={"inputs": [rows[0]["row"]]})
        records = logged(home, 2 * len(rows) + 1)
        text = httpx.get(f"{running.url}/metrics").text
    finally:
        stop(running)
    for answer, r in zip(fallback, rows, strict=True):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"]["version"] == "1" and body["served_by"] == "champion"
        assert body["predictions"][0]["score"] == pytest.approx(r["score"], abs=1e-9)
    assert metric(text, "ml_assets_canary_fallbacks_total", challenger_version=broken) == 4
    for answer, r in zip(canary, rows, strict=True):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"]["version"] == working and body["served_by"] == "canary"
        assert body["decision_threshold"] == 0.0
        assert body["predictions"][0]["decision"] is True
        assert body["predictions"][0]["score"] == pytest.approx(r["score"], abs=1e-9)
    assert invoked.json()["predictions"] == pytest.approx([rows[0]["score"]])
    served = {"version": working, "served_by": "canary", "status": "200"}
    assert metric(text, "ml_assets_predict_requests_total", **served) == 4
    by_kind = sorted((r["served_by"], r["canary_fallback"], r["model_version"]) for r in records)
    assert by_kind == sorted(
        [("champion", True, "1")] * 4
        + [("canary", False, working)] * 4
        + [("champion", False, "1")]
    )
    # On a canary request the champion is the shadow: its decisions, at its own threshold.
    for record in (r for r in records if r["served_by"] == "canary"):
        assert record["shadow_model_version"] == "1" and record["decision"] is True
        assert record["shadow_agree"] is record["shadow_decision"]


def test_a_candidate_is_promoted_after_its_shadow_trial(world, tmp_path, monkeypatch) -> None:
    """The whole online gate: retrain with `evaluation.shadow` -> pending, `challenger`; the
    service shadows it on real requests; `online_log` ingests them; the sensor asks for a
    decision; the `champion_model` run it asks for promotes on the measured agreement."""
    home, tracking = copy_home(world, tmp_path)
    monkeypatch.setenv("ML_ASSETS_HOME", str(home))
    raw = read_spec_mapping(world.spec.path)
    raw["evaluation"]["shadow"] = {"min_rows": 12, "min_agreement": 0.9}
    spec = load_spec(write_spec(tmp_path / "specs" / "flights" / "defs.yaml", raw))
    defs = build_defs([spec])
    champion_key = spec.names.key("champion_model")
    with dg.DagsterInstance.ephemeral() as instance:
        trained = defs.resolve_job_def(spec.names.job("train")).execute_in_process(
            instance=instance,
            run_config={"ops": {"flights__training_set": {"config": {"as_of": "2013-03-09"}}}},
        )
        assert trained.success
        candidate = candidate_version(trained)
        ok, outcome = training_outcome(trained)
        assert ok and outcome.startswith(f"pending v{candidate} (in shadow: 0 of 12 rows")
        aliases = tracking.client().get_registered_model(MODEL).aliases
        assert str(aliases["champion"]) == "1" and str(aliases[CHALLENGER]) == candidate
        assert open_trial_request(instance, spec) is None  # nothing ingested yet

        rows = validated_rows(home, limit=12)
        running = start_service(home, tmp_path / "specs", ML_ASSETS_SERVE_LOG_FLUSH_SECONDS="0.2")
        try:
            wait_for_challenger(running.url, candidate)
            with running.client() as client:
                for r in rows:
                    assert client.post("/v1/flights/predict", json=r["row"]).status_code == 200
            records = logged(home, len(rows))
        finally:
            stop(running)
        assert len(records) == 12 and {r["shadow_model_version"] for r in records} == {candidate}
        agreement = sum(r["shadow_agree"] for r in records) / len(records)

        ingest = defs.resolve_job_def(spec.names.job("online_log"))
        assert ingest.execute_in_process(
            instance=instance, partition_key=SCORED_DAY.isoformat()
        ).success
        sensor = defs.resolve_sensor_def(spec.names.sensor("shadow_gate"))
        result = sensor(dg.build_sensor_context(instance=instance))
        (request,) = result.run_requests
        decided = (
            defs.resolve_implicit_global_asset_job_def()
            .get_subset(asset_selection=set(request.asset_selection))
            .execute_in_process(instance=instance, tags=request.tags)
        )
        assert decided.success
        # The trial closed: the sensor has nothing more to ask.
        assert open_trial_request(instance, spec) is None
    with duckdb.connect(str(home / "data" / "warehouse" / "warehouse.duckdb")) as conn:
        last = decisions(conn, "flights")[-1]
    gate = {c["name"]: c for c in last.checks}["shadow_agreement"]
    assert gate["observed"] == pytest.approx(agreement)
    assert last.candidate_version == candidate and "shadow trial since" in last.trigger
    if agreement >= 0.9:
        assert last.decision == "promoted" and gate["passed"]
        assert [e.asset_key for e in decided.get_asset_materialization_events()] == [champion_key]
        assert current_champion(tracking, MODEL) == candidate
    else:
        assert last.decision == "rejected" and not gate["passed"]
        assert current_champion(tracking, MODEL) == "1"
