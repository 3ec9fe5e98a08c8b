"""Where the project's files and generated state live.

Read when called, never at import, so tests can point a whole run at a temp directory by setting
`ML_ASSETS_HOME` (or by passing paths to the resources) without reloading modules.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def project_root() -> Path:
    """The repo root, or `ML_ASSETS_HOME` when set (generated state then goes there)."""
    return Path(os.environ.get("ML_ASSETS_HOME", PACKAGE_ROOT.parent)).resolve()


def data_dir() -> Path:
    return project_root() / "data"


def defs_dir() -> Path:
    """The Dagster defs folder: one dataset component per subfolder (`<name>/defs.yaml`)."""
    return PACKAGE_ROOT / "defs"


def specs_override() -> Path | None:
    """`ML_ASSETS_SPECS`: a folder of specs to load instead of the defs folder (tests, scripts)."""
    override = os.environ.get("ML_ASSETS_SPECS")
    return Path(override).resolve() if override else None


def specs_dir() -> Path:
    """Where the dataset specs are read from: the override, else the defs folder."""
    return specs_override() or defs_dir()


def warehouse_path() -> Path:
    return data_dir() / "warehouse" / "warehouse.duckdb"


def landing_dir(dataset: str) -> Path:
    return data_dir() / "landing" / dataset


def archive_dir(dataset: str) -> Path:
    """Immutable copies of landed files, so a partition can be rebuilt after the drop is gone."""
    return data_dir() / "warehouse" / "landed" / dataset


def cache_dir() -> Path:
    return data_dir() / "cache"


def online_store_url() -> str | None:
    """`ML_ASSETS_ONLINE_STORE`: a `redis://` URL to publish and serve snapshots through Redis;
    unset (or `file`): the embedded file store under data/online only."""
    value = os.environ.get("ML_ASSETS_ONLINE_STORE", "").strip()
    if value in ("", "file"):
        return None
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"ML_ASSETS_ONLINE_STORE must be 'file' or a redis:// URL, got {value!r}")
    return value


def reports_dir() -> Path:
    return data_dir() / "reports"
