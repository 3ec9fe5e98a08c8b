"""A real served world, built once: flights Jan 1 - Mar 10 2013 through features, a champion
trained and promoted by the real train job (MLflow sqlite store), 2013-03-10 scored in batch by
the real predictions asset, and an online snapshot published by a real `online_features` run.
Tests copy it into their own home when they change it."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec, load_spec, read_spec_mapping, write_spec
from ml_assets.definitions import build_defs
from ml_assets_tests.conftest import FLIGHTS_SPEC, REPO, build_flights_warehouse

FIRST, LAST = dt.date(2013, 1, 1), dt.date(2013, 3, 10)
SCORED_DAY = LAST
MODEL = "flights_arrival_delay"


@dataclass(frozen=True)
class World:
    home: Path
    spec_dir: Path
    spec: DatasetSpec


def flights_spec(spec_dir: Path) -> DatasetSpec:
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw["features"]["sql"] = [str(FLIGHTS_SPEC.parent / p) for p in raw["features"].get("sql", [])]
    raw["training"].update({"window_days": 45, "search": {"method": "random", "budget": 2}})
    raw["evaluation"]["floor"] = 0.6
    return load_spec(write_spec(spec_dir / "flights" / "defs.yaml", raw))


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("served")
    (home / "data").mkdir()
    build_flights_warehouse(home, FIRST, LAST, features=True)
    spec = flights_spec(home / "specs")
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("ML_ASSETS_HOME", str(home))
        defs = build_defs([spec])
        trained = defs.resolve_job_def(spec.names.job("train")).execute_in_process(
            instance=instance,
            run_config={"ops": {"flights__training_set": {"config": {"as_of": "2013-03-09"}}}},
        )
        assert trained.success
        scored = defs.resolve_job_def(spec.names.job("monitor")).execute_in_process(
            instance=instance,
            partition_key=SCORED_DAY.isoformat(),
            asset_selection=[spec.names.key("predictions")],
        )
        assert scored.success
        online = defs.resolve_job_def(spec.names.job("online")).execute_in_process(
            instance=instance
        )
        assert online.success
    return World(home, home / "specs", spec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    url: str
    process: subprocess.Popen

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_service(home: Path, spec_dir: Path, **env: str) -> Service:
    """`python -m ml_assets.serving` on a free loopback port; returns once /health answers."""
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if k != "ML_ASSETS_API_TOKEN"},
        "ML_ASSETS_HOME": str(home),
        "ML_ASSETS_SPECS": str(spec_dir),
        "ML_ASSETS_SERVE_POLL_SECONDS": "0.5",
        **env,
    }
    log = open(home / f"serve-{port}.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_assets.serving", "--port", str(port)],
        cwd=REPO,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((home / f"serve-{port}.log").read_text()[-3000:])
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return Service(url, process)
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("service did not start")


def stop(service: Service) -> None:
    service.process.terminate()
    try:
        service.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        service.process.kill()


@pytest.fixture(scope="session")
def service(world: World) -> Iterator[Service]:
    running = start_service(world.home, world.spec_dir)
    yield running
    stop(running)


def validated_rows(home: Path, keys: list[str] | None = None, limit: int = 5) -> list[dict]:
    """Validated rows of the scored day as a client sends them: contract fields, no label."""
    from ml_assets.layers.online.parity import request_value

    with duckdb.connect(str(home / "data" / "warehouse" / "warehouse.duckdb"), read_only=True) as c:
        c.execute("SET TimeZone = 'UTC'")
        frame = c.execute(
            """SELECT v.*, p.score AS _batch_score FROM flights.validated v
               JOIN flights.predictions p USING (_key, _partition_date)
               WHERE _partition_date = ? ORDER BY _key LIMIT ?""",
            [SCORED_DAY, limit],
        ).df()
    fields = [c for c in read_spec_mapping(FLIGHTS_SPEC)["contract"]["columns"] if c != "arr_delay"]
    return [
        {
            "row": {f: request_value(r[f]) for f in fields},
            "key": r["_key"],
            "score": r["_batch_score"],
        }
        for _, r in frame.iterrows()
    ]


__all__ = ["MODEL", "Service", "World", "settings", "start_service", "stop", "validated_rows"]
