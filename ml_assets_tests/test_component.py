"""A dataset is a Dagster Component: scaffolded by `dg`, validated by its schema, loaded by `dg`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import dagster as dg
import pytest
from dagster.components.testing import create_defs_folder_sandbox

from ml_assets import settings
from ml_assets.component import DatasetComponent
from ml_assets.core.spec import load_specs
from ml_assets.definitions import build_defs, load_definitions, shared_resources

REPO = Path(__file__).resolve().parent.parent


def test_a_scaffolded_dataset_is_a_valid_component_with_the_data_layers() -> None:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(DatasetComponent, defs_path="shop_orders")
        text = (path / "defs.yaml").read_text()
        assert text.startswith("type: ml_assets.component.DatasetComponent")
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, DatasetComponent)
            # The folder names the dataset; files the spec names are relative to its defs.yaml.
            assert component.spec.name == "shop_orders"
            assert component.spec.path == path / "defs.yaml"
            assert not component.spec.has_model_layers
            keys = {
                k.to_user_string()
                for k in dg.Definitions.merge(defs, shared_resources()).resolve_all_asset_keys()
            }
            assert keys == {"shop_orders/raw", "shop_orders/validated", "shop_orders/quarantine"}


def causes(exc: BaseException | None) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def test_a_wrong_field_fails_loading_with_the_file_line_and_field() -> None:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(DatasetComponent, defs_path="shop_orders")
        yaml_file = path / "defs.yaml"
        yaml_file.write_text(yaml_file.read_text().replace("kind: binary", "kind: ranking"))
        with (
            pytest.raises(Exception) as err,
            sandbox.load_component_and_build_defs(defs_path=path),
        ):
            pass
        message = "\n".join(str(e) for e in causes(err.value))
        assert "attributes.label.kind" in message and str(yaml_file) in message
        assert "'binary' or 'regression'" in message


def test_the_defs_folder_builds_the_same_graph_as_the_specs(home) -> None:
    from_components = load_definitions()
    from_specs = build_defs(load_specs(settings.defs_dir()))
    keys = {k.to_user_string() for k in from_components.resolve_all_asset_keys()}
    assert keys == {k.to_user_string() for k in from_specs.resolve_all_asset_keys()}
    assert "flights/champion_model" in keys and "flights/drift_report" in keys
    job = from_components.resolve_job_def("flights__train")
    assert job.name == "flights__train"


def _dg(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(REPO / "data" / "dagster_home")}
    env.pop("ML_ASSETS_SPECS", None)
    return subprocess.run(
        [str(Path(os.sys.executable).parent / "dg"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_dg_check_and_list_defs_on_the_project() -> None:
    checked = _dg("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    assets = {a["asset_key"] for a in json.loads(listed.stdout)["assets"]}
    assert {"flights/raw", "flights/model_evaluation", "flights/performance"} <= assets
    yaml_ok = _dg("check", "yaml")
    assert yaml_ok.returncode == 0, yaml_ok.stdout + yaml_ok.stderr
