"""The code location loads cleanly: no errors and no warnings about the definitions."""

import gc
import warnings

import dagster as dg

from ml_assets.definitions import load_definitions


def test_definitions_load_without_warnings(home) -> None:
    """Through the real entry point: the defs folder's dataset components.

    Garbage left by earlier tests in the same worker (Dagster's `local_temp` instances own a
    TemporaryDirectory that warns when collected) is collected first, so only warnings raised
    while the definitions load are counted.
    """
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = load_definitions()
        dg.Definitions.validate_loadable(defs)
        repo = defs.get_repository_def()
    assert [str(w.message) for w in caught] == []
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"flights/raw", "flights/validated", "flights/quarantine"} <= keys
    checks = {(c.asset_key.to_user_string(), c.name) for c in repo.asset_graph.asset_check_keys}
    assert ("flights/validated", "row_conservation") in checks
    assert ("flights/raw", "freshness") in checks
    assert {s.name for s in repo.sensor_defs} >= {
        "flights__landing",
        "flights__retrain",
        "flights__alerts",
    }


def test_the_dagster_module_entry_point_builds_from_the_repo_specs() -> None:
    """What `dagster dev -w workspace.yaml` loads: the module's lazy `defs`, built on call."""
    from ml_assets.definitions import defs

    resolved = defs()
    assert isinstance(resolved, dg.Definitions)
    jobs = {j.name for j in resolved.get_repository_def().get_all_jobs()}
    assert {"flights__daily_layers", "flights__train", "flights__monitor"} <= jobs
    assert {"flights__rollback"} <= jobs
