"""Figure (serving): single-row online predictions, ours against MLflow's scoring server.

Both serve the same registered version on 127.0.0.1, each in its own process:
  - ours: `python -m ml_assets.serving` (one uvicorn worker) with raw source fields in, features
    computed at request time from the online snapshot, the calibrated score and decision out,
    a shadow challenger scoring every request in the background and the request log on;
  - theirs: `mlflow models serve --env-manager local` of the same fitted model, sent the model's
    feature row (it has no feature store: it does less work per request), the raw model output.
    The registered version's own `xgboost` flavor cannot be served so: MLflow hands XGBoost the
    categorical features as text (object columns) and XGBoost refuses them. So the same fitted
    model is logged as a `python_function` that applies the version's feature schema
    (`model_matrix`, the categories of training) first: what serving it with MLflow takes.
Measured per side: open-loop load at `RATE` requests/s for `SECONDS` (latency from each
request's *scheduled* send time, so a stalled server is not hidden by a waiting client: p50,
p99, errors), then the most requests/s 8 concurrent clients get (closed loop). The load is
bounded in requests and time and only ever targets 127.0.0.1; it runs in a process of its
own (`loadgen.py`). The baseline is verified: its
answer for a row equals our model's raw output for the same row.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import mlflow
import mlflow.pyfunc
import numpy as np

from benchmarks.harness import Bench, Figure, Measure, figure
from benchmarks.model_figures import REPO, _home, _setup
from ml_assets.core.matrix import model_matrix
from ml_assets.core.predictor import CHALLENGER, load_predictor, registered_ref
from ml_assets.layers.online.parity import request_value
from ml_assets.resources.mlflow_tracking import MlflowTracking

HOST = "127.0.0.1"  # the only address the load generator will send to
RATE = 200  # requests per second, open loop
SECONDS = 30
CLIENTS = 8  # concurrent clients of the throughput run
THROUGHPUT_SECONDS = 10
P99_GOAL_MS = 10.0
THROUGHPUT_GOAL = 3.0
SAMPLE_ROWS = 200


class SchemaModel(mlflow.pyfunc.PythonModel):
    """The fitted model behind its feature schema, as an MLflow `python_function`."""

    def __init__(self, model: Any, schema: Any) -> None:
        self.model, self.schema = model, schema

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return self.model.predict_proba(model_matrix(model_input, self.schema))[:, 1]


def _pyfunc_version(tracking: MlflowTracking, predictor: Any, name: str) -> str:
    """The champion's fitted model logged as a `python_function` (see the module docstring)."""
    experiment = tracking.experiment_id("ml_assets/bench_serving")
    with mlflow.start_run(experiment_id=experiment, run_name="mlflow serving baseline"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=SchemaModel(predictor.model, predictor.schema),
            pip_requirements=[],
        )
    return info.model_uri


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, log: Path, bound: float = 180.0) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not start: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _load(port: int, path: str, bodies: list[bytes], workdir: Path, *mode: str) -> dict:
    """One `benchmarks.loadgen` run in a process of its own (see its docstring for why)."""
    file = workdir / f"bodies-{port}.json"
    file.write_text(json.dumps([b.decode() for b in bodies]))
    args = ["--port", str(port), "--path", path, "--bodies", str(file), *mode]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.loadgen", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SECONDS + THROUGHPUT_SECONDS + 120,
        check=True,
    )
    return json.loads(done.stdout)


def open_loop(
    port: int, path: str, bodies: list[bytes], workdir: Path, rate: float, seconds: float
) -> dict:
    """`rate` requests/s for `seconds`, latency from each request's scheduled time."""
    return _load(port, path, bodies, workdir, "--rate", str(rate), "--seconds", str(seconds))


def closed_loop(
    port: int, path: str, bodies: list[bytes], workdir: Path, clients: int, seconds: float
) -> dict:
    """`clients` concurrent clients, each sending when the last answered: requests/s."""
    return _load(port, path, bodies, workdir, "--clients", str(clients), "--seconds", str(seconds))


def prepare(bench: Bench) -> dict[str, Any]:
    """A champion (the model figures' setup, small when run alone), a second version as the
    `challenger` so shadow scoring runs, and a published online snapshot."""
    setup = bench.cache.get("model_setup") or _setup(dataclasses.replace(bench, quick=True))
    home, spec = setup["home"], setup["spec"]
    tracking = MlflowTracking(tracking_uri=f"sqlite:///{home / 'data' / 'mlflow' / 'mlflow.db'}")
    client = tracking.client()
    name = spec.training.registered_model_name
    champion = client.get_model_version_by_alias(name, "champion")
    aliases = client.get_registered_model(name).aliases
    if aliases.get(CHALLENGER) in (None, champion.version):
        copy = client.create_model_version(
            name, champion.source, run_id=champion.run_id, tags=champion.tags
        )
        client.set_registered_model_alias(name, CHALLENGER, copy.version)
    with _home(home):
        online = setup["defs"].resolve_job_def(spec.names.job("online"))
        assert online.execute_in_process(instance=setup["instance"]).success
    predictor = load_predictor(registered_ref(tracking, name, alias="champion"), tracking)
    with duckdb.connect(str(home / "data" / "warehouse" / "warehouse.duckdb"), read_only=True) as c:
        c.execute("SET TimeZone = 'UTC'")
        day = c.execute(f"SELECT max(_partition_date) FROM {spec.names.table('features')}")
        (last,) = day.fetchone()
        frame = c.execute(
            f"""SELECT v.*, {", ".join(f"f.{col}" for col in predictor.ref.features)}
                FROM {spec.names.table("validated")} v
                JOIN {spec.names.table("features")} f USING (_key, _partition_date)
                WHERE _partition_date = ? ORDER BY hash(_key) LIMIT ?""",
            [last, SAMPLE_ROWS],
        ).df()
    label = spec.label.column or "arr_delay"
    fields = [c for c in spec.contract.columns if c != label]
    raw = [{f: request_value(r[f]) for f in fields} for r in frame.to_dict("records")]
    features = frame[[*predictor.ref.features]]
    matrix = features.astype(object).where(features.notna(), None)
    split = [
        {"dataframe_split": {"columns": list(matrix.columns), "data": [list(row)]}}
        for row in matrix.itertuples(index=False)
    ]
    return {
        **setup,
        "tracking": tracking,
        "model": _pyfunc_version(tracking, predictor, name),
        "ours_bodies": [json.dumps(r).encode() for r in raw],
        "theirs_bodies": [json.dumps(b, default=float).encode() for b in split],
        "expected_raw": predictor.raw_predict(frame),
    }


def _ours(setup: dict[str, Any], log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "ML_ASSETS_API_TOKEN"},
        "ML_ASSETS_HOME": str(setup["home"]),
        "ML_ASSETS_SPECS": str(setup["spec"].path.parent),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_assets.serving", "--host", HOST, "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    _wait(f"http://{HOST}:{port}/health", process, log)
    return process, port


def _theirs(setup: dict[str, Any], log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    serve = [mlflow, "models", "serve", "--env-manager", "local", "-m"]
    bin_dir = str(Path(sys.executable).parent)  # it runs `uvicorn` by name: the venv's
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": setup["tracking"].tracking_uri,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),  # the wrapper class is `benchmarks.serving.SchemaModel`
    }
    process = subprocess.Popen(
        [*serve, setup["model"], "--host", HOST, "--port", str(port), "--workers", "1"],
        cwd=setup["home"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its gunicorn/uvicorn children stop with the group
    )
    _wait(f"http://{HOST}:{port}/health", process, log)
    return process, port


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def measure(setup: dict[str, Any], workdir: Path, rate: float, seconds: float) -> dict:
    out: dict[str, Any] = {}
    process, port = _ours(setup, workdir / "ours.log")
    try:
        bodies = setup["ours_bodies"]
        for body in bodies[:20]:  # warm-up, and every sample row must be accepted
            with httpx.Client() as c:
                answer = c.post(f"http://{HOST}:{port}/v1/flights/predict", content=body)
                assert answer.status_code == 200, answer.text
        health = httpx.get(f"http://{HOST}:{port}/health").json()["datasets"]["flights"]
        out["ours_shadow_challenger"] = health.get("challenger_version")
        out["ours_open_loop"] = open_loop(
            port, "/v1/flights/predict", bodies, workdir, rate, seconds
        )
        out["ours_throughput"] = closed_loop(
            port, "/v1/flights/predict", bodies, workdir, CLIENTS, THROUGHPUT_SECONDS
        )
        metrics = httpx.get(f"http://{HOST}:{port}/metrics").text
        out["ours_shadow_rows"] = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("ml_assets_shadow_rows_total")
        )
    finally:
        _stop(process)
    process, port = _theirs(setup, workdir / "mlflow.log")
    try:
        bodies = setup["theirs_bodies"]
        with httpx.Client() as c:
            got = [
                c.post(
                    f"http://{HOST}:{port}/invocations",
                    content=b,
                    headers={"content-type": "application/json"},
                ).json()["predictions"][0]
                for b in bodies[:20]
            ]
        out["mlflow_verified_max_abs_diff"] = float(
            np.max(np.abs(np.asarray(got, dtype="float64") - setup["expected_raw"][:20]))
        )
        out["mlflow_open_loop"] = open_loop(port, "/invocations", bodies, workdir, rate, seconds)
        out["mlflow_throughput"] = closed_loop(
            port, "/invocations", bodies, workdir, CLIENTS, THROUGHPUT_SECONDS
        )
    finally:
        _stop_group(process)
    return out


@figure("serving", "(serving) Single-row online predict p99: ours vs mlflow models serve")
def serving(bench: Bench) -> Figure:
    setup = prepare(bench)
    rate, seconds = (RATE, 5) if bench.quick else (RATE, SECONDS)
    details = measure(setup, bench.scratch("serving"), rate, seconds)
    ours, theirs = details["ours_open_loop"], details["mlflow_open_loop"]
    ratio = details["ours_throughput"]["rps"] / max(details["mlflow_throughput"]["rps"], 1e-9)
    verified = details["mlflow_verified_max_abs_diff"] < 1e-6
    details["verified"] = verified
    details["throughput_ratio"] = round(ratio, 3)
    met = (
        ours["errors"] == 0
        and ours["p99_ms"] is not None
        and ours["p99_ms"] <= P99_GOAL_MS
        and theirs["p99_ms"] is not None
        and ours["p99_ms"] < theirs["p99_ms"]
        and ratio >= THROUGHPUT_GOAL
    )
    return Figure(
        ours=Measure("ml_assets.serving p99 (s)", [ours["p99_ms"] / 1000], extra=ours),
        baseline=Measure("mlflow models serve p99 (s)", [theirs["p99_ms"] / 1000], extra=theirs),
        goal=(
            f"p99 <= {P99_GOAL_MS:g} ms at {RATE} req/s with shadow on, 0 errors, lower than "
            f"MLflow's; throughput at {CLIENTS} clients >= {THROUGHPUT_GOAL:g}x MLflow's"
        ),
        meets_goal=met,
        notes=(
            f"open loop {rate} req/s for {seconds} s, single rows; p50 ours "
            f"{ours['p50_ms']} ms vs MLflow {theirs['p50_ms']} ms; {CLIENTS} clients: ours "
            f"{details['ours_throughput']['rps']} req/s vs MLflow "
            f"{details['mlflow_throughput']['rps']} req/s (x{ratio:.2f}). Ours computes the "
            "features from raw fields and runs a shadow model; MLflow is sent ready features."
        ),
        details=details,
    )
