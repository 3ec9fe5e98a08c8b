"""MLflow tracking and model registry as a Dagster ConfigurableResource.

Why not dagster-mlflow's `mlflow_tracking`: in this version it is a legacy `@resource` that opens
one MLflow run per *Dagster run* and shares it across every step, ending it only through a hook on
the job's last op. Assets materialized in subsets (the normal case in the UI) leave that run
RUNNING, and several models trained in one step cannot get a run each. This resource gives each
training its own MLflow run, explicitly ended, against a store chosen when the resource is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import mlflow
from mlflow import MlflowClient
from pydantic import Field

from ml_assets import settings


def default_tracking_uri() -> str:
    return f"sqlite:///{settings.data_dir() / 'mlflow' / 'mlflow.db'}"


def default_artifact_root() -> str:
    return (settings.data_dir() / "mlflow" / "artifacts").as_uri()


class MlflowTracking(dg.ConfigurableResource):
    """Where experiments and registered models live (sqlite + local artifacts by default)."""

    tracking_uri: str = Field(
        "", description="MLflow tracking URI; default sqlite under data/mlflow/."
    )
    artifact_root: str = Field("", description="Artifact root URI; default data/mlflow/artifacts/.")
    ui_url: str = Field(
        "http://localhost:5000", description="Base URL of `make mlflow-ui`, for links."
    )

    @property
    def uri(self) -> str:
        return self.tracking_uri or default_tracking_uri()

    def client(self) -> MlflowClient:
        self._prepare()
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _prepare(self) -> None:
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created with our artifact root on first use."""
        client = self.client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        root = self.artifact_root or default_artifact_root()
        return client.create_experiment(name, artifact_location=f"{root}/{name}")

    @contextmanager
    def start_run(
        self,
        experiment: str,
        run_name: str,
        tags: dict[str, str] | None = None,
        nested: bool = False,
    ) -> Iterator[mlflow.ActiveRun]:
        """An MLflow run that is ended (FINISHED or FAILED) when the block exits.

        `nested=True` makes it a child of the run active in the enclosing block.
        """
        experiment_id = self.experiment_id(experiment)
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, tags=tags, nested=nested
        ) as run:
            yield run

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_url(self, name: str, version: str) -> str:
        return f"{self.ui_url}/#/models/{name}/versions/{version}"
