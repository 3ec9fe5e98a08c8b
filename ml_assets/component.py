"""A dataset as a Dagster Component: a `defs.yaml` whose attributes are the DatasetSpec.

`dg scaffold defs ml_assets.component.DatasetComponent <name>` writes a new dataset folder under
`ml_assets/defs/`, `dg check yaml` validates it against the spec's schema, and `dg check defs`,
`dg list defs` and `dg dev` load every dataset through this class. The attributes model is the
DatasetSpec itself, so a spec error reads the same in the UI, in `dg` and in `make run`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import BaseModel

from ml_assets.core.spec import DatasetSpec
from ml_assets.factory import build_dataset_defs


class DatasetScaffolder(dg.Scaffolder):
    """Writes a data-layers-only spec to fill in: the folder name becomes the dataset name."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = request.target_path.name
        dg.scaffold_component(request, template_attributes(name))


def template_attributes(name: str) -> dict[str, object]:
    """A valid starting spec: one CSV source, a key, an event time and a binary label."""
    return {
        "name": name,
        "description": f"{name}: describe the data here.",
        "source": {"files": [f"data/{name}/*.csv"], "format": "csv"},
        "partitions": {"start": "2024-01-01"},
        "event_time": {"column": "event_time", "timezone": "UTC"},
        "label": {"kind": "binary", "column": "label", "delay_days": 0},
        "contract": {
            "unique_key": ["id"],
            "columns": {
                "id": {"type": "BIGINT", "nullable": False},
                "event_time": {"type": "TIMESTAMPTZ", "nullable": False},
                "label": {"type": "BOOLEAN"},
            },
        },
    }


@dg.scaffold_with(DatasetScaffolder)
class DatasetComponent(dg.Component):
    """One dataset: raw -> validated/quarantine (-> features -> models -> monitoring), from its spec."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return DatasetSpec

    @classmethod
    def load(
        cls, attributes: BaseModel | None, context: dg.ComponentLoadContext
    ) -> DatasetComponent:
        if not isinstance(attributes, DatasetSpec):
            raise dg.DagsterInvalidDefinitionError(
                f"{context.path}: a dataset component needs attributes (the dataset spec)"
            )
        # Files a spec names (feature SQL) are relative to the folder of its defs.yaml.
        return cls(attributes.model_copy(update={"path": Path(context.path) / "defs.yaml"}))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_dataset_defs(self.spec)
