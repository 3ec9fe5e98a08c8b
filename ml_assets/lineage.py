"""Fingerprints that make lineage checkable: code versions and data versions."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ml_assets.specs import DatasetSpec


def code_version(spec: DatasetSpec, layer_dir: Path) -> str:
    """Hash of the spec and of the layer's Python and SQL: changes when what builds it changes.

    Dagster shows it on every materialization and flags downstream assets whose inputs were
    built by a different code version.
    """
    digest = hashlib.sha256(spec.model_dump_json(exclude={"path"}).encode())
    for path in sorted(layer_dir.rglob("*")):
        if path.suffix in {".py", ".sql"}:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
