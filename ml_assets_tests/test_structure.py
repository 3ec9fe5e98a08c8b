"""The package's shape: layers import downwards only, core imports no layer, no pickles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ml_assets"
# Upstream first: a layer may import from itself, from core and from the layers before it.
LAYER_ORDER = (
    "ingest",
    "validate",
    "features",
    "online",
    "train",
    "evaluate",
    "promote",
    "score",
    "requests",
    "monitor",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["ml_assets", "layers"] and len(parts) > 2 else None


def test_every_layer_folder_is_in_the_declared_order() -> None:
    folders = {p.name for p in (PACKAGE / "layers").iterdir() if (p / "__init__.py").exists()}
    assert folders == set(LAYER_ORDER)


@pytest.mark.parametrize("layer", LAYER_ORDER)
def test_layers_import_only_from_upstream(layer: str) -> None:
    allowed = set(LAYER_ORDER[: LAYER_ORDER.index(layer) + 1])
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / "layers" / layer).rglob("*.py")
        for module in imported_modules(path)
        if layer_of(module) is not None and layer_of(module) not in allowed
    }
    assert not wrong, sorted(wrong)
    others = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in (PACKAGE / "layers" / layer).rglob("*.py")
        for module in imported_modules(path)
        if module.startswith(("ml_assets.automation", "ml_assets.factory", "ml_assets.run"))
    }
    assert not others, sorted(others)


def test_core_imports_no_layer_and_nothing_above_it() -> None:
    bad = {
        f"{path.name} imports {module}"
        for path in (PACKAGE / "core").rglob("*.py")
        for module in imported_modules(path)
        if module.startswith("ml_assets.")
        and not module.startswith(("ml_assets.core", "ml_assets.resources", "ml_assets.settings"))
    }
    assert not bad, sorted(bad)


def test_no_pickle_in_the_package() -> None:
    users = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if {"pickle", "cloudpickle", "dill"} & {m.split(".")[0] for m in imported_modules(path)}
    ]
    assert users == []
