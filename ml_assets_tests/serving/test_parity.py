"""The blocking parity check, through real `online_features` runs: it passes on the real online
path and fails, naming the feature and rows, when one online window is off by an hour."""

from __future__ import annotations

import dataclasses
import shutil

import dagster as dg
import pytest

from ml_assets.definitions import build_defs
from ml_assets.layers.online import schema, store
from ml_assets.layers.online.assets import PARITY

pytestmark = pytest.mark.slow


def run_online(world, home, monkeypatch) -> dg.ExecuteInProcessResult:
    monkeypatch.setenv("ML_ASSETS_HOME", str(home))
    job = build_defs([world.spec]).resolve_job_def(world.spec.names.job("online"))
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False)


def parity_of(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == PARITY]
    return evaluation


def test_parity_passes_and_the_pointer_swaps(world, tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    shutil.copytree(world.home, home, ignore=shutil.ignore_patterns("serve-*.log"))
    before = store.current_snapshot("flights", home / "data" / "online")
    result = run_online(world, home, monkeypatch)
    evaluation = parity_of(result)
    assert evaluation.passed and evaluation.metadata["rows"].value == 300
    after = store.current_snapshot("flights", home / "data" / "online")
    assert after != before and after.exists() and before.exists()
    assert result.asset_materializations_for_node("flights__online_features")


def test_an_off_by_one_lookback_fails_parity_and_is_not_published(
    world, tmp_path, monkeypatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(world.home, home, ignore=shutil.ignore_patterns("serve-*.log"))
    before = store.current_snapshot("flights", home / "data" / "online")
    honest = schema.window_feature

    def skewed(spec, name, window, stream):
        feature = honest(spec, name, window, stream)
        if name == "origin_dep_delay_3h":  # reaches 4 hours back instead of 3
            return dataclasses.replace(feature, reach_us=feature.reach_us + schema.MICROS_PER_HOUR)
        return feature

    monkeypatch.setattr(schema, "window_feature", skewed)
    result = run_online(world, home, monkeypatch)
    evaluation = parity_of(result)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    mismatched = evaluation.metadata["mismatched_features"].value
    assert list(mismatched) == ["origin_dep_delay_3h"] and mismatched["origin_dep_delay_3h"] > 0
    samples = evaluation.metadata["mismatched_samples"].value
    assert samples and {s["feature"] for s in samples} == {"origin_dep_delay_3h"}
    assert all(s["key"] and s["offline"] != s["online"] for s in samples)
    # Not published: readers still see the snapshot from before, and nothing materialized.
    assert store.current_snapshot("flights", home / "data" / "online") == before
    assert result.asset_materializations_for_node("flights__online_features") == []
