"""Code versions: a fingerprint of exactly what builds a layer's assets.

Dagster shows the code version on every materialization and flags downstream assets whose inputs
were built by a different one. A fingerprint of the whole spec would mark `raw` as changed when
only a monitoring threshold moved, so each layer hashes only the spec sections it reads, its own
Python and SQL, and any dataset files it runs (the feature SQL).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from ml_assets.core.spec import DatasetSpec

LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"

# The spec sections each layer's assets read. Checks and sensors are not part of an asset's code.
LAYER_INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": ("name", "source", "partitions", "event_time", "contract"),
    "validate": ("name", "event_time", "label", "contract", "quality"),
    "features": ("name", "lookups", "label", "features"),
    # The request path types fields with the contract and derives the event time and key.
    "online": ("name", "lookups", "event_time", "label", "contract", "features"),
    # The threshold policy is applied at training time, on validation (train/threshold.py).
    "train": ("name", "label", "features", "training", "evaluation.threshold"),
    "evaluate": (
        "name",
        "label",
        "slices",
        "evaluation",
        "monitoring.performance_window_days",
        "monitoring.degradation_quantile",
        "training.seed",
    ),
    "promote": ("name", "description", "intended_use", "label", "contract", "evaluation"),
    "score": ("name", "features", "scoring"),
    "monitor": ("name", "label", "features", "evaluation", "training", "monitoring"),
}
# Fields only the retrain sensor reads: changing them changes no asset.
SENSOR_ONLY = {"monitoring": {"retrain_on", "retrain_cooldown_days", "champion_max_age_days"}}


def spec_inputs(spec: DatasetSpec, layer: str) -> dict[str, object]:
    """The parts of the spec a layer reads, as JSON-ready data."""
    dumped = spec.model_dump(mode="json", exclude={"path"})
    out = {}
    for section in LAYER_INPUTS[layer]:
        if "." in section:  # one field of a section
            head, _, name = section.partition(".")
            out[section] = (dumped.get(head) or {}).get(name)
            continue
        value = dumped.get(section)
        if isinstance(value, dict) and section in SENSOR_ONLY:
            value = {k: v for k, v in value.items() if k not in SENSOR_ONLY[section]}
        out[section] = value
    return out


def code_version(spec: DatasetSpec, layer: str, files: Iterable[Path] = ()) -> str:
    """Hash of the spec sections `layer` reads, its Python and SQL, and the given files."""
    digest = hashlib.sha256(json.dumps(spec_inputs(spec, layer), sort_keys=True).encode())
    layer_files = sorted(p for p in (LAYERS_DIR / layer).rglob("*") if p.suffix in {".py", ".sql"})
    for path in [*layer_files, *files]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
