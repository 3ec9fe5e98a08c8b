"""`training_set` as a real Dagster materialization on a temp DuckDB file."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from ml_assets.layers.train.assets import build_train_assets
from ml_assets.layers.train.checks import build_train_checks
from ml_assets.resources.warehouse import warehouse_resource
from ml_assets_tests.layers.train.conftest import synthetic_features, write_features

D = dt.date


@pytest.fixture
def features(warehouse, synth_spec) -> pd.DataFrame:
    """40 days (2024-01-01..02-09) of 200 rows in synth.features."""
    frame = synthetic_features("binary", days=40, rows_per_day=200)
    write_features(warehouse, "synth", frame)
    warehouse.execute("CHECKPOINT")
    return frame


def materialize(spec, instance, as_of: str | None = None, raise_on_error: bool = True):
    assets = build_train_assets(spec)[:1]
    config = {"ops": {"synth__training_set": {"config": {"as_of": as_of}}}}
    return dg.materialize(
        [*assets, *build_train_checks(spec)],
        instance=instance,
        resources={"warehouse": warehouse_resource()},
        run_config=config,
        raise_on_error=raise_on_error,
    )


def metadata(result) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def failure(result) -> str:
    """The failed step's error and its causes (the user's exception is the cause)."""
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error, messages = event.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


# Through the assets' own resource: a connection with the same configuration as theirs.
def update(sql: str) -> None:
    with warehouse_resource().get_connection() as conn:
        conn.execute(sql)


def table(sql: str) -> pd.DataFrame:
    with warehouse_resource().get_connection() as conn:
        return conn.execute(sql).df()


def test_window_splits_and_metadata(home, synth_spec, features, warehouse, instance) -> None:
    warehouse.close()
    result = materialize(synth_spec, instance)
    assert result.success
    meta = metadata(result)
    # Labels arrive a day late: 2024-02-09 is not fully labelled at the end of the data.
    assert meta["as_of"] == "2024-02-08"
    assert (meta["partition_start"], meta["partition_end"], meta["partition_days"]) == (
        "2024-01-10",
        "2024-02-08",
        30,
    )
    assert meta["days_with_rows"] == 30
    # Independent count from the generated frame.
    day = pd.to_datetime(features["_partition_date"])
    bounds = {
        "train": ("2024-01-10", "2024-01-25"),
        "validation": ("2024-01-26", "2024-02-01"),
        "test": ("2024-02-02", "2024-02-08"),
    }
    excluded = 0
    for split, (first, last) in bounds.items():
        rows = features[(day >= first) & (day <= last)]
        labelled = rows[rows["_label"].notna()]
        assert meta[f"rows_{split}"] == len(labelled) > 0
        assert meta[f"label_rate_{split}"] == pytest.approx(labelled["_label"].mean(), abs=1e-12)
        assert (
            meta["splits"][split]["first_day"] == first
            and meta["splits"][split]["last_day"] == last
        )
        assert meta["splits"][split]["excluded_null_label_rows"] == rows["_label"].isna().sum()
        excluded += rows["_label"].isna().sum()
    assert meta["excluded_null_label_rows"] == excluded > 0
    assert meta["dagster/row_count"] == sum(meta[f"rows_{s}"] for s in bounds)

    written = table("SELECT * FROM synth.training_set")
    assert written["_label"].notna().all()
    assert "_computed_at" not in written.columns  # unknown audit columns are not carried
    assert list(written.columns[-1:]) == ["_split"]
    per_day = written.groupby("_partition_date")["_split"].nunique()
    assert (per_day == 1).all()  # splits are whole days
    types = dict(table("DESCRIBE synth.training_set")[["column_name", "column_type"]].values)
    assert types["hour"] == "DOUBLE" and types["region"] == "VARCHAR"

    assert len(meta["data_version"]) == 16
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.metadata["problems"]
    # The window info is the asset's output, for model_candidate.
    info = result.output_for_node("synth__training_set")
    assert info.data_version == meta["data_version"] and info.as_of == D(2024, 2, 8)


def test_data_version_follows_the_rows_of_the_window(
    home, synth_spec, features, warehouse, instance
) -> None:
    warehouse.close()
    first = metadata(materialize(synth_spec, instance))["data_version"]
    assert metadata(materialize(synth_spec, instance))["data_version"] == first
    assert metadata(materialize(synth_spec, instance, as_of="2024-02-08"))["data_version"] == first
    other = metadata(materialize(synth_spec, instance, as_of="2024-02-07"))
    assert other["partition_end"] == "2024-02-07" and other["data_version"] != first

    # A day outside the window does not matter, nor does an audit column the training set does
    # not carry; one value inside the window does.
    update("UPDATE synth.features SET load = load + 1 WHERE _partition_date = '2024-01-02'")
    update("UPDATE synth.features SET _computed_at = now()")
    assert metadata(materialize(synth_spec, instance))["data_version"] == first
    update(
        "UPDATE synth.features SET region = 'south' WHERE _key = "
        "(SELECT min(_key) FROM synth.features WHERE _partition_date = '2024-01-20' "
        "AND region <> 'south' AND _label IS NOT NULL)"
    )
    assert metadata(materialize(synth_spec, instance))["data_version"] != first


def test_bad_as_of_fails_and_leaves_the_table(
    home, synth_spec, features, warehouse, instance
) -> None:
    warehouse.close()
    good = metadata(materialize(synth_spec, instance))
    before = table("SELECT count(*) AS n FROM synth.training_set")["n"][0]
    failed = materialize(synth_spec, instance, as_of="2024-02-09", raise_on_error=False)
    assert not failed.success
    assert "as_of 2024-02-09 is after 2024-02-08" in failure(failed)
    # Not enough history for a training split: also refused, table untouched.
    failed = materialize(synth_spec, instance, as_of="2024-01-10", raise_on_error=False)
    assert "no labelled rows for split(s) train" in failure(failed)
    assert table("SELECT count(*) AS n FROM synth.training_set")["n"][0] == before
    assert metadata(materialize(synth_spec, instance))["data_version"] == good["data_version"]


def test_missing_features_table_is_a_clear_error(home, synth_spec, warehouse, instance) -> None:
    warehouse.close()
    failed = materialize(synth_spec, instance, raise_on_error=False)
    assert "table synth.features does not exist: materialize synth/features first" in failure(
        failed
    )
