"""The code location loads cleanly: no errors and no warnings about the definitions."""

import warnings

import dagster as dg

from ml_assets import settings
from ml_assets.definitions import build_defs
from ml_assets.specs import load_specs


def test_definitions_load_without_warnings(home) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_defs(load_specs(settings.specs_dir()))
        dg.Definitions.validate_loadable(defs)
        repo = defs.get_repository_def()
    assert [str(w.message) for w in caught] == []
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"flights/raw", "flights/validated", "flights/quarantine"} <= keys
    checks = {(c.asset_key.to_user_string(), c.name) for c in repo.asset_graph.asset_check_keys}
    assert ("flights/validated", "row_conservation") in checks
    assert ("flights/raw", "freshness") in checks
    assert {s.name for s in repo.sensor_defs} >= {"flights__landing"}


def test_the_dagster_module_entry_point_builds_from_the_repo_specs() -> None:
    from ml_assets.definitions import defs

    resolved = defs() if callable(defs) else defs
    assert resolved.resolve_job_def("flights__daily_layers").name == "flights__daily_layers"
