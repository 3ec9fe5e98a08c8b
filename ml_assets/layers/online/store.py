"""The embedded online store: a directory of Parquet snapshots and a pointer to the current one.

Dagster writes, a separate serving process reads, and the two share no lock: a snapshot is
written whole into its own directory (under a temporary name, renamed when complete), then the
small pointer file `CURRENT` is replaced with `os.replace`, which is atomic on one filesystem. A
reader resolves the pointer once and reads only that directory, so it sees the old snapshot or
the new one, never a mix. Older snapshots are pruned, keeping a few so a reader that resolved
the pointer just before a swap can still finish loading.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path

from ml_assets import settings
from ml_assets.layers.online import redis_store

POINTER = "CURRENT"
MANIFEST = "manifest.json"
KEEP_SNAPSHOTS = 3


def store_dir(dataset: str, root: Path | None = None) -> Path:
    """`data/online/<dataset>/` (or under `root`)."""
    return (root or settings.data_dir() / "online") / dataset


def new_snapshot_dir(dataset: str, root: Path | None = None) -> Path:
    """An empty directory to build a snapshot in; not visible to readers until `finish`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = store_dir(dataset, root) / "snapshots" / f".building-{stamp}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def finish(building: Path, manifest: dict) -> Path:
    """Write the manifest last and give the directory its final name (still unpublished)."""
    (building / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    final = building.with_name(building.name.removeprefix(".building-"))
    building.rename(final)
    return final


def publish(snapshot: Path) -> None:
    """Point readers at `snapshot`: one atomic replace of the pointer file, and with a Redis
    store configured (`settings.online_store_url`) one transaction there too."""
    root = snapshot.parent.parent
    url = settings.online_store_url()
    if url is not None:
        redis_store.publish(url, root.name, snapshot)
    tmp = root / f".{POINTER}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps({"snapshot": snapshot.name}))
    os.replace(tmp, root / POINTER)
    _prune(snapshot.parent, keep=snapshot.name)


def discard(snapshot: Path) -> None:
    """Remove a snapshot that failed its checks (it was never published)."""
    shutil.rmtree(snapshot, ignore_errors=True)


def current_snapshot(dataset: str, root: Path | None = None) -> Path | None:
    """The published snapshot's directory, or None when nothing was published. With a Redis
    store configured, the snapshot its pointer names, materialised in a local cache."""
    url = settings.online_store_url()
    if url is not None:
        return redis_store.current_snapshot(url, dataset)
    pointer = store_dir(dataset, root) / POINTER
    try:
        name = json.loads(pointer.read_text())["snapshot"]
    except FileNotFoundError:
        return None
    return pointer.parent / "snapshots" / name


def read_manifest(snapshot: Path) -> dict:
    return json.loads((snapshot / MANIFEST).read_text())


def _prune(snapshots: Path, keep: str) -> None:
    done = sorted(
        (p for p in snapshots.iterdir() if not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    for old in done[:-KEEP_SNAPSHOTS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
