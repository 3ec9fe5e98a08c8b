"""Code versions per layer: a spec change marks only the assets that read the changed section."""

from __future__ import annotations

from pathlib import Path

from ml_assets.core.spec import DatasetSpec, load_spec, read_spec_mapping, write_spec
from ml_assets.factory import build_dataset_defs
from ml_assets_tests.conftest import FLIGHTS_SPEC


def versions(spec: DatasetSpec) -> dict[str, str]:
    return {
        s.key.path[-1]: s.code_version
        for assets in build_dataset_defs(spec).assets
        for s in assets.specs
        if s.code_version
    }


def variant(tmp_path: Path, section: str, **changes: object) -> DatasetSpec:
    raw = read_spec_mapping(FLIGHTS_SPEC)
    raw[section] = {**(raw.get(section) or {}), **changes}
    raw["features"]["sql"] = [str(FLIGHTS_SPEC.parent / p) for p in raw["features"].get("sql", [])]
    return load_spec(write_spec(tmp_path / f"{section}.yaml", raw))


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before if before[k] != after[k]}


def test_each_layer_hashes_only_what_it_reads(tmp_path: Path) -> None:
    base = versions(variant(tmp_path / "base", "monitoring"))
    assert len(base) == 17 and len(set(base.values())) > 5

    # Read only by the retrain sensor: no asset changes.
    cooldown = versions(variant(tmp_path / "a", "monitoring", retrain_cooldown_days=3))
    assert changed(base, cooldown) == set()

    # A drift threshold: the monitoring layer only.
    drift = versions(variant(tmp_path / "b", "monitoring", drift_share_warn=0.55))
    assert changed(base, drift) == {"drift_report", "performance", "online_performance"}

    # A gate: evaluation and promotion (its card and audit), nothing upstream.
    gate = versions(variant(tmp_path / "c", "evaluation", floor=0.6))
    assert changed(base, gate) == {
        "model_evaluation",
        "champion_model",
        "model_card",
        "drift_report",
        "performance",
        "online_performance",
    }

    # A quality threshold the validate layer reads; raw is untouched.
    quality = versions(variant(tmp_path / "d", "quality", future_tolerance_minutes=10))
    assert changed(base, quality) == {"validated", "quarantine"}

    # How many contributions scoring keeps per row: the predictions (and their explanations).
    top_k = versions(variant(tmp_path / "e", "scoring", explain_top_k=2))
    assert changed(base, top_k) == {"predictions"}
