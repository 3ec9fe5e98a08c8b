"""DatasetSpec loading: the bundled spec is valid, and every mistake names file and field."""

from pathlib import Path

import pytest

from ml_assets.specs import SpecError, load_spec, load_specs
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
            "<root>",
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
            "<root>",
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
