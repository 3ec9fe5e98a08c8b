"""The drift calibration is computed once per reference window and reused, never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_assets.layers.monitor.calibration import Calibration, calibrate
from ml_assets.layers.monitor.calibration_cache import cached_calibration, calibration_key
from ml_assets_tests.layers.monitor.test_calibration import CATEGORICAL, NUMERIC, days_like_weather

SETTINGS = {"p_value": 0.01, "quantile": 0.99}


def counting(reference, calls: list[int]):
    def compute() -> Calibration:
        calls.append(1)
        return calibrate(reference, NUMERIC, CATEGORICAL, **SETTINGS)

    return compute


def test_the_second_run_reuses_the_calibration_exactly(tmp_path: Path) -> None:
    reference = days_like_weather(30, 200, seed=1)
    key = calibration_key(reference, NUMERIC, CATEGORICAL, **SETTINGS)
    calls: list[int] = []
    first = cached_calibration(tmp_path, label="v1", key=key, compute=counting(reference, calls))
    again = cached_calibration(tmp_path, label="v1", key=key, compute=counting(reference, calls))
    assert calls == [1]
    assert (first.hit, again.hit) == (False, True)
    assert again.path == first.path and first.path.name == f"v1_{key}.json"
    # Full precision: the verdicts judged with a reused calibration are the same to the bit.
    assert again.calibration == first.calibration
    assert again.calibration.day_constant == ("weekday",)


def test_the_order_of_the_rows_does_not_change_the_key_or_the_calibration() -> None:
    """The window is read without ORDER BY: the same rows in another order are the same window."""
    reference = days_like_weather(30, 200, seed=1)
    shuffled = reference.sample(frac=1.0, random_state=3)
    assert calibration_key(shuffled, NUMERIC, CATEGORICAL, **SETTINGS) == calibration_key(
        reference, NUMERIC, CATEGORICAL, **SETTINGS
    )
    assert calibrate(shuffled, NUMERIC, CATEGORICAL, **SETTINGS) == calibrate(
        reference, NUMERIC, CATEGORICAL, **SETTINGS
    )


@pytest.mark.parametrize(
    "change",
    ["one value", "one more day", "quantile", "p_value", "column list", "score"],
)
def test_anything_the_calibration_reads_changes_the_key(change: str) -> None:
    reference = days_like_weather(30, 200, seed=1)
    base = calibration_key(reference, NUMERIC, CATEGORICAL, **SETTINGS)
    settings, numeric = dict(SETTINGS), list(NUMERIC)
    if change == "one value":
        reference.loc[17, "temp"] += 1e-9
    elif change == "one more day":
        reference = days_like_weather(31, 200, seed=1)
    elif change == "score":
        reference.loc[3, "score"] = 0.5
    elif change == "column list":
        numeric = numeric[:1]
    else:
        settings[change] = 0.95 if change == "quantile" else 0.05
    assert calibration_key(reference, numeric, CATEGORICAL, **settings) != base


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    """A run killed or failing while writing leaves nothing that a later run would read."""
    unwritable = Calibration(0.99, 1, {"temp": object()}, {"temp": 0.5})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        cached_calibration(tmp_path, label="v1", key="k", compute=lambda: unwritable)
    assert list(tmp_path.iterdir()) == []
