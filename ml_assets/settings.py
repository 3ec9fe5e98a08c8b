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


def specs_dir() -> Path:
    """Dataset specs; `ML_ASSETS_SPECS` overrides (a folder of `*.yaml`)."""
    override = os.environ.get("ML_ASSETS_SPECS")
    return Path(override).resolve() if override else PACKAGE_ROOT.parent / "data" / "datasets"


def warehouse_path() -> Path:
    return data_dir() / "warehouse" / "warehouse.duckdb"


def landing_dir(dataset: str) -> Path:
    return data_dir() / "landing" / dataset


def archive_dir(dataset: str) -> Path:
    """Immutable copies of landed files, so a partition can be rebuilt after the drop is gone."""
    return data_dir() / "warehouse" / "landed" / dataset


def cache_dir() -> Path:
    return data_dir() / "cache"


def reports_dir() -> Path:
    return data_dir() / "reports"
