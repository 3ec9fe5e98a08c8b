"""The Redis online store against a real redis-server on a loopback port: snapshots published by
a real `online_features` run, read by a real service that never sees the local store, swapped
atomically under a concurrent reader, old ones pruned."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ml_assets.layers.online import redis_store, store
from ml_assets_tests.serving.conftest import free_port, start_service, stop, validated_rows
from ml_assets_tests.serving.test_parity import run_online

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (`make test` installs Debian's redis-server)"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=(workdir / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, (workdir / "redis.log").read_text()
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=20)


def snapshot_copy(source: Path, root: Path, name: str) -> Path:
    """A copy of a real snapshot under another name, its manifest saying which one it is."""
    target = root / "flights" / "snapshots" / name
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(json.dumps({**manifest, "copy": name}))
    (target / "marker.txt").write_text(name)
    return target


def test_a_reader_sees_whole_snapshots_while_they_swap(world, tmp_path, redis_url) -> None:
    source = store.current_snapshot("flights", world.home / "data" / "online")
    names = [f"s{i:02d}" for i in range(12)]
    snapshots = [snapshot_copy(source, tmp_path / "built", n) for n in names]
    seen: list[str] = []
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            path = redis_store.current_snapshot(redis_url, "flights", tmp_path / "cache")
            if path is None:
                continue
            marker = (path / "marker.txt").read_text()
            copy = json.loads((path / "manifest.json").read_text())["copy"]
            if not (marker == copy == path.name):
                problems.append(f"{path.name}: marker {marker}, manifest {copy}")
            seen.append(path.name)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for snapshot in snapshots:
            redis_store.publish(redis_url, "flights", snapshot)
            time.sleep(0.05)
    finally:
        done.set()
        reader.join(30)
    assert not problems
    assert len(set(seen)) > 3  # the reader did follow the swaps
    last = redis_store.current_snapshot(redis_url, "flights", tmp_path / "cache")
    assert last is not None and last.name == names[-1]
    for rel in ("manifest.json", *(str(p.relative_to(source)) for p in source.rglob("*.parquet"))):
        if rel != "manifest.json":
            assert (last / rel).read_bytes() == (source / rel).read_bytes()
    client = redis.Redis.from_url(redis_url)
    kept = [n.decode() for n in client.zrange("ml_assets:online:flights:snapshots", 0, -1)]
    assert kept == names[-redis_store.KEEP_SNAPSHOTS :]
    assert not client.exists(f"ml_assets:online:flights:snapshot:{names[0]}")
    assert len(list((tmp_path / "cache" / "flights").iterdir())) <= redis_store.KEEP_SNAPSHOTS


def test_the_service_serves_and_reloads_from_redis_alone(
    world, tmp_path, redis_url, monkeypatch
) -> None:
    writer = tmp_path / "writer"
    shutil.copytree(world.home, writer, ignore=shutil.ignore_patterns("serve-*.log"))
    monkeypatch.setenv("ML_ASSETS_ONLINE_STORE", redis_url)
    assert run_online(world, writer, monkeypatch).success
    first = store.current_snapshot("flights")  # through Redis: ML_ASSETS_ONLINE_STORE is set
    assert first is not None
    # The reader's home has the model registry but no local online store at all.
    reader = tmp_path / "reader"
    shutil.copytree(world.home, reader, ignore=shutil.ignore_patterns("serve-*.log", "online"))
    assert not (reader / "data" / "online" / "flights").exists()
    service = start_service(reader, world.spec_dir, ML_ASSETS_ONLINE_STORE=redis_url)
    try:
        with service.client() as c:
            assert c.get("/health").json()["datasets"]["flights"]["snapshot"] == first.name
            sample = validated_rows(world.home, limit=3)
            answer = c.post("/v1/flights/predict", json={"rows": [s["row"] for s in sample]})
            assert answer.status_code == 200, answer.text
            assert [p["key"] for p in answer.json()["predictions"]] == [s["key"] for s in sample]
            assert run_online(world, writer, monkeypatch).success  # a new snapshot
            second = store.current_snapshot("flights")
            assert second is not None and second.name != first.name
            deadline = time.monotonic() + 30
            while c.get("/health").json()["datasets"]["flights"]["snapshot"] != second.name:
                assert time.monotonic() < deadline, "the service never loaded the new snapshot"
                time.sleep(0.2)
            assert c.post("/v1/flights/predict", json={"rows": [sample[0]["row"]]}).is_success
    finally:
        stop(service)
    # Served from Redis: nothing was read from (or written as) a local snapshot.
    assert not (reader / "data" / "online" / "flights" / "snapshots").exists()


def test_an_unreachable_redis_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ML_ASSETS_ONLINE_STORE", f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(redis_store.RedisStoreError, match="cannot read flights from the Redis"):
        store.current_snapshot("flights")
    monkeypatch.setenv("ML_ASSETS_ONLINE_STORE", "memcached://x")
    with pytest.raises(ValueError, match="must be 'file' or a redis:// URL"):
        store.current_snapshot("flights")
