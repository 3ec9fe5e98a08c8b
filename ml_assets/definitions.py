"""The one entry point: Definitions for every dataset spec under `data/datasets/`."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from ml_assets import settings
from ml_assets.factory import build_dataset_defs
from ml_assets.resources.mlflow_tracking import MlflowTracking
from ml_assets.resources.warehouse import warehouse_resource
from ml_assets.specs import DatasetSpec, load_specs


def build_defs(specs: Sequence[DatasetSpec], warehouse_path: str | None = None) -> dg.Definitions:
    """Definitions for the given specs; tests call this with their own specs and a temp warehouse."""
    return dg.Definitions.merge(
        *(build_dataset_defs(spec) for spec in specs),
        dg.Definitions(
            resources={"warehouse": warehouse_resource(warehouse_path), "mlflow": MlflowTracking()}
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(load_specs(settings.specs_dir()))
