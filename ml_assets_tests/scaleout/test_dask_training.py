"""`training.engine: dask`: model_candidate trains XGBoost with `xgboost.dask` on a real Dask
cluster (a `LocalCluster` of two worker processes), registers it in MLflow like the local engine,
and reproduces its metrics from the same rows and seed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dask.utils import key_split
from distributed import LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin

from ml_assets.core.predictor import load_predictor
from ml_assets.core.spec import SpecError, TrainingSection, load_spec
from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.dask_engine import ADDRESS_ENV, scheduler_address
from ml_assets.layers.train.families import metrics
from ml_assets_tests.layers.train.conftest import load_features, make_store, write_spec


def dask_spec(home: Path, address: str, method: str = "random"):
    """The synthetic training spec with `engine: dask` and the scheduler's address."""
    spec = write_spec(home, "synth", method=method)
    text = spec.path.read_text().replace(
        "  models: [xgboost, linear]\n",
        f"  models: [xgboost, linear]\n  engine: dask\n  dask: {{address: '{address}'}}\n",
    )
    spec.path.write_text(text)
    return load_spec(spec.path)


class FinishedTasks(SchedulerPlugin):
    """Counts the tasks the scheduler saw finish, by name prefix."""

    def __init__(self) -> None:
        self.by_prefix: dict[str, int] = {}

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "memory":
            prefix = key_split(key)
            self.by_prefix[prefix] = self.by_prefix.get(prefix, 0) + 1


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        local.scheduler.add_plugin(FinishedTasks(), name="finished_tasks")
        yield local


def model_meta(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.mark.slow  # a Dask cluster of two processes and two trainings
def test_dask_engine_trains_registers_and_reproduces(cluster: LocalCluster, tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    spec = dask_spec(tmp_path, cluster.scheduler_address)
    assert (spec.training.engine, spec.training.dask.address) == ("dask", cluster.scheduler_address)
    load_features(store, "synth", "binary", days=40, rows_per_day=250)
    assets = build_train_assets(spec)
    key = spec.names.key("model_candidate")
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize(assets, instance=instance, resources=store.resources())
        second = dg.materialize(
            assets, instance=instance, resources=store.resources(), selection=[key]
        )
    assert first.success and second.success

    # The scheduler ran xgboost.dask's training task (`fn`) for every fit: once per worker and
    # trial alone (2 trainings x 3 trials x 2 workers = 12); under pytest-xdist 11 was seen once
    # (a fit's rows on one worker), so at least one per fit is what is asserted.
    seen = cluster.scheduler.plugins["finished_tasks"].by_prefix.get("fn", 0)
    assert 2 * 3 <= seen <= 2 * 3 * len(cluster.workers)

    # Same rows, same seed: the same metrics and parameters, and a new version each time.
    meta, again = model_meta(first, key), model_meta(second, key)
    assert meta["validation_metrics"] == again["validation_metrics"]
    assert meta["params"] == again["params"]
    assert (meta["model_version"], again["model_version"]) == ("1", "2")
    # It learned the signal as the local engine does (a linear model cannot fit it).
    assert meta["xgboost_validation_roc_auc"] > max(0.75, meta["linear_validation_roc_auc"])

    # The registry and lineage are the local engine's: the family run says where it was fit, the
    # registered version loads as an ordinary XGBoost model and scores what was logged.
    ref = first.output_for_node("synth__model_candidate")
    assert ref.family == "xgboost"
    client = store.tracking.client()
    run = client.get_run(ref.run_id)
    assert run.data.tags["training_engine"] == "dask"
    assert run.data.tags["dask_scheduler"] == cluster.scheduler_address
    assert client.get_model_version("synth_model", ref.version).run_id == ref.run_id
    valid = store.frame("SELECT * FROM synth.training_set WHERE _split = 'validation'")
    served = load_predictor(ref, store.tracking).raw_predict(valid)
    scored = metrics("binary", valid["_label"].to_numpy(), served)
    assert scored["roc_auc"] == pytest.approx(meta["xgboost_validation_roc_auc"], abs=1e-12)


def test_spec_rejects_optuna_on_dask_and_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"training.*engine dask supports search.method random"):
        dask_spec(tmp_path, "tcp://127.0.0.1:8786", method="optuna")


def test_scheduler_address_comes_from_the_spec_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    with pytest.raises(ValueError, match=rf"training.dask.address nor {ADDRESS_ENV}"):
        scheduler_address(TrainingSection(engine="dask"))
    monkeypatch.setenv(ADDRESS_ENV, "tcp://from-env:8786")
    assert scheduler_address(TrainingSection(engine="dask")) == "tcp://from-env:8786"
    spec_address = TrainingSection(engine="dask", dask={"address": "tcp://from-spec:8786"})
    assert scheduler_address(spec_address) == "tcp://from-spec:8786"
