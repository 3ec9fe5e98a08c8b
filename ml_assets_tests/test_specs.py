"""DatasetSpec loading: the bundled spec is valid, and every mistake names file and field."""

from pathlib import Path

import pytest

from ml_assets.core.spec import MonitoringSection, SpecError, load_spec, load_specs
from ml_assets_tests.conftest import FLIGHTS_SPEC, ORDERS_SPEC


def test_flights_spec_describes_the_bundled_data() -> None:
    spec = load_spec(FLIGHTS_SPEC)
    assert spec.name == "flights"
    assert spec.label.kind == "binary" and spec.label.delay_days == 1
    assert spec.contract.unique_key == ["year", "month", "day", "carrier", "flight", "origin"]
    assert set(spec.slices) == {"carrier", "origin", "month"}
    assert spec.contract.columns["arr_delay"].nullable  # cancelled/diverted flights


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


VALID = ORDERS_SPEC.format(files="data/o.csv", end="2024-01-31")
FEATURES = """
features:
  sql: [features.sql]
  columns: {amount: {kind: numeric}}
"""
MODEL_SECTIONS = FEATURES + "training: {window_days: 30}\nevaluation: {floor: 0.5}\n"


@pytest.mark.parametrize("monitoring", ["", "monitoring: {}\n", "monitoring:\n"])
def test_partial_model_sections_are_completed_from_defaults(tmp_path: Path, monitoring) -> None:
    """`monitoring: {}` (or none) beside `training` means the defaults, never "no model layers"."""
    spec = load_spec(_write(tmp_path, VALID + MODEL_SECTIONS + monitoring))
    assert spec.has_model_layers
    assert spec.monitoring == MonitoringSection()
    assert spec.evaluation.metric == "rmse"  # the regression default, not roc_auc
    assert spec.training.window_days == 30 and spec.training.split.test_days == 14


def test_data_layers_only_spec_has_no_model_layers(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, VALID + FEATURES))
    assert not spec.has_model_layers and spec.features is not None
    assert spec.training is None and spec.monitoring is None


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (lambda s: s.replace("name: orders", "name: 9orders"), "name", "pattern"),
        (
            lambda s: s.replace("kind: regression", "kind: ranking"),
            "label.kind",
            "'binary' or 'regression'",
        ),
        (
            lambda s: s.replace("unique_key: [order_id]", "unique_key: [nope]"),
            "contract.unique_key",
            "'nope' is not a contract column",
        ),
        (
            lambda s: s.replace(
                "amount: {type: DOUBLE, min: 0,", "amount: {type: VARCHAR, min: 0,"
            ),
            "contract.columns.amount",
            "min/max need a numeric type",
        ),
        (
            lambda s: s.replace("slices: [status]", "slices: [colour]"),
            "slices",
            "'colour' is not a contract column",
        ),
        (
            lambda s: s.replace(
                "event_time: {column: ordered_at, timezone: UTC}", "event_time: {timezone: UTC}"
            ),
            "event_time",
            "exactly one of 'column' or 'expression'",
        ),
        (lambda s: s.replace("quality:", "qualty:"), "qualty", "Extra inputs are not permitted"),
        # Model sections are typed too: a partial model configuration never drops layers.
        (
            lambda s: s + MODEL_SECTIONS.replace("{floor: 0.5}", "{}"),
            "evaluation.floor",
            "required",
        ),
        (
            lambda s: s + FEATURES + "training: {window_days: 30}\n",
            "evaluation",
            "required when the model layers are configured",
        ),
        (
            lambda s: s + MODEL_SECTIONS.replace("{floor: 0.5}", "{floor: 0.5, metric: roc_auc}"),
            "evaluation.metric",
            "not defined for task 'regression'",
        ),
        (
            lambda s: s + MODEL_SECTIONS + "monitoring: {retrain_on: [drift_report:nope]}\n",
            "monitoring.retrain_on",
            "unknown check",
        ),
        (
            lambda s: s + MODEL_SECTIONS.replace("{window_days: 30}", "{window_dayz: 30}"),
            "training.window_dayz",
            "Extra inputs are not permitted",
        ),
        (
            lambda s: s.replace(
                "{type: BIGINT, nullable: false}", "{type: BIGNUM, nullable: false}"
            ),
            "contract.columns.order_id.type",
            "Input should be",
        ),
    ],
)
def test_spec_errors_name_file_field_and_problem(
    tmp_path: Path, edit, field: str, problem: str
) -> None:
    path = _write(tmp_path, edit(VALID))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert problem in message


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(_write(tmp_path, "name: [unclosed"))
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec(_write(tmp_path, "- a\n- b\n"))


def test_duplicate_dataset_names_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    with pytest.raises(SpecError, match="already used by"):
        load_specs(tmp_path)
