"""A real MLflow sqlite store under the temp home, and real models registered into it.

Creating an MLflow database runs its migrations (seconds); a migrated empty database is built
once per session and copied into each test's home, so each test still gets its own store.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from ml_assets import settings
from ml_assets.core.model import ModelRef
from ml_assets.resources.mlflow_tracking import MlflowTracking

MODEL_NAME = "synthetic_model"


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowTracking(tracking_uri=f"sqlite:///{path}").client().search_experiments()
    return path


@pytest.fixture
def tracking(home: Path, empty_mlflow_db: Path) -> MlflowTracking:
    target = settings.data_dir() / "mlflow" / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_mlflow_db, target)
    resource = MlflowTracking()
    assert resource.uri == f"sqlite:///{target}"
    return resource


@dataclass(frozen=True)
class Registered:
    ref: ModelRef
    model: object


def register(
    tracking: MlflowTracking,
    model: object,
    family: str,
    features: list[str],
    categorical: list[str] | None = None,
    name: str = MODEL_NAME,
) -> Registered:
    """Log `model` in its own MLflow run and register it as a new version of `name`."""
    with tracking.start_run("synthetic", f"{family}-candidate") as run:
        if family == "xgboost":
            info = mlflow.xgboost.log_model(
                model, name="model", registered_model_name=name, pip_requirements=["xgboost"]
            )
        else:
            # skops (MLflow's default sklearn format) lists the imputers' numpy dtypes as
            # untrusted; they are plain data.
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=name,
                pip_requirements=["scikit-learn"],
                skops_trusted_types=["numpy.dtype"],
            )
    ref = ModelRef(
        registered_name=name,
        version=str(info.registered_model_version),
        run_id=run.info.run_id,
        family=family,
        task="binary",
        features=tuple(features),
        categorical=tuple(categorical or ()),
        data_version="synthetic-v1",
        train_window=("2013-01-01", "2013-03-31"),
    )
    return Registered(ref, model)
