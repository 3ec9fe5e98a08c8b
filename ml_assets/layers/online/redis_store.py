"""The Redis online store: the same snapshots, published to a Redis server that serving processes
on other machines can read (`ML_ASSETS_ONLINE_STORE=redis://host:port/db`).

A snapshot is still built, checked for parity and kept as a local directory (`store.py`); on
publish its files go into one Redis hash per snapshot (`<prefix>:snapshot:<name>`: relative
path -> bytes), and the pointer `<prefix>:current` is set in the same MULTI/EXEC transaction,
so a reader that reads the pointer and then that one hash (HGETALL, itself atomic) gets the old
snapshot or the new one, never a mix. Readers materialise the hash into a local cache directory
(written under a temporary name, renamed when complete) and load it like a file snapshot, so the
feature computation has one shape whatever the store. A few older snapshots are kept, so a
reader that read the pointer just before a swap still finds its hash.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from ml_assets import settings

KEEP_SNAPSHOTS = 3
PREFIX = "ml_assets:online"


class RedisStoreError(RuntimeError):
    """The configured Redis store cannot be reached or holds an incomplete snapshot."""


def _client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def _keys(dataset: str) -> tuple[str, str, str]:
    base = f"{PREFIX}:{dataset}"
    return f"{base}:current", f"{base}:snapshots", f"{base}:snapshot:"


def publish(url: str, dataset: str, snapshot: Path) -> None:
    """Upload `snapshot`'s files and point readers at it, in one transaction; prune old ones."""
    import redis

    files = {
        str(p.relative_to(snapshot)): p.read_bytes()
        for p in sorted(snapshot.rglob("*"))
        if p.is_file()
    }
    current, listed, hash_prefix = _keys(dataset)
    try:
        client = _client(url)
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(hash_prefix + snapshot.name)
            pipe.hset(hash_prefix + snapshot.name, mapping=files)
            pipe.set(current, snapshot.name)
            pipe.zadd(listed, {snapshot.name: time.time()})
            pipe.execute()
        old = [n.decode() for n in client.zrange(listed, 0, -KEEP_SNAPSHOTS - 1)]
        old = [n for n in old if n != snapshot.name]
        if old:
            with client.pipeline(transaction=True) as pipe:
                pipe.delete(*(hash_prefix + n for n in old))
                pipe.zrem(listed, *old)
                pipe.execute()
    except redis.RedisError as exc:
        raise RedisStoreError(f"cannot publish {dataset} to the Redis store {url}: {exc}") from exc


def current_snapshot(url: str, dataset: str, cache: Path | None = None) -> Path | None:
    """The published snapshot, materialised under `cache` (default data/cache/online-redis);
    None when nothing was published."""
    import redis

    current, _, hash_prefix = _keys(dataset)
    root = (cache or settings.cache_dir() / "online-redis") / dataset
    try:
        client = _client(url)
        for _ in range(3):  # pruned between the two reads: read the pointer again
            name = client.get(current)
            if name is None:
                return None
            target = root / name.decode()
            if (target / "manifest.json").exists():
                return target
            files = client.hgetall(hash_prefix + name.decode())
            if files:
                return _materialise(target, files)
    except redis.RedisError as exc:
        raise RedisStoreError(f"cannot read {dataset} from the Redis store {url}: {exc}") from exc
    raise RedisStoreError(f"the Redis store {url} lost {dataset}'s snapshot while reading it")


def _materialise(target: Path, files: dict[bytes, bytes]) -> Path:
    if b"manifest.json" not in files:
        raise RedisStoreError(f"snapshot {target.name} in Redis has no manifest.json")
    building = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    for rel, data in files.items():
        path = building / rel.decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    try:
        os.replace(building, target)
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
        if not (target / "manifest.json").exists():
            raise
        # another reader materialised it meanwhile: the same bytes
    _prune_cache(target.parent, keep=target.name)
    return target


def _prune_cache(root: Path, keep: str) -> None:
    """Older materialised snapshots go; a few stay for readers still loading them."""
    done = sorted(
        (p for p in root.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime
    )
    for old in done[:-KEEP_SNAPSHOTS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
