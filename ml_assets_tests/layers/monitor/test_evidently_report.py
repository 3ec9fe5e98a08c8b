"""The Evidently report (real Evidently 0.7) and its agreement with compute_drift.

Two kinds of agreement: on big unambiguous data (Evidently on its seeded sample, ours on every
row; sizes and shifts chosen so the verdicts cannot flip between a 5k sample and 50k rows), and
on the identical sample (every method, score and threshold must match Evidently's).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from ml_assets.core.spec import MonitoringSection
from ml_assets.layers.monitor.drift import compute_drift
from ml_assets.layers.monitor.evidently_report import (
    disagreements,
    evidently_report,
    evidently_sample,
)
from ml_assets.layers.monitor.report import wants_evidently, window_drift
from ml_assets_tests.layers.monitor.synthetic import CATEGORICAL, NUMERIC, frame

FEATURES = [*NUMERIC, *CATEGORICAL]
ALL = [*FEATURES, "score"]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return frame(50_000, seed=11)


def test_unshifted_data_drifts_in_neither(reference: pd.DataFrame, tmp_path: Path) -> None:
    current = frame(50_000, seed=12)
    path = tmp_path / "reports" / "drift.html"
    theirs = evidently_report(
        reference, current, NUMERIC, CATEGORICAL, path, sample_rows=5000, seed=0, score="score"
    )
    ours = compute_drift(reference, current, NUMERIC, CATEGORICAL, score="score")

    assert ours.drifted_columns == [] and not ours.dataset_drift
    assert ours.prediction is not None and not ours.prediction.drifted
    assert theirs.verdicts == dict.fromkeys(FEATURES, False)
    assert theirs.prediction is not None and not theirs.prediction.drifted
    assert disagreements(ours, theirs) == {}
    # Large on both sides, so both use the distances: Wasserstein where values are many,
    # Jensen-Shannon for categories and for the 4- and 2-valued numeric columns.
    for column in FEATURES:
        assert theirs.columns[column].method == ours.columns[column].method
    assert {c: ours.columns[c].method for c in NUMERIC} == {
        "normal": "wasserstein",
        "skewed": "wasserstein",
        "count": "jensenshannon",
        "binary": "jensenshannon",
    }
    assert (theirs.rows_reference, theirs.rows_current) == (5000, 5000)
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") or "<html" in html[:1000]
    assert "Wasserstein distance (normed)" in html and "colour" in html


def test_shifted_data_drifts_in_both(reference: pd.DataFrame, tmp_path: Path) -> None:
    current = frame(
        50_000,
        seed=13,
        shift=0.5,  # half a standard deviation: normed Wasserstein ~0.5 against a 0.1 threshold
        mix={"red": 0.2, "green": 0.3, "blue": 0.5},  # Jensen-Shannon ~0.23
        score_power=2.0,
    )
    theirs = evidently_report(
        reference,
        current,
        NUMERIC,
        CATEGORICAL,
        tmp_path / "drift.html",
        sample_rows=5000,
        seed=1,
        score="score",
    )
    ours = compute_drift(reference, current, NUMERIC, CATEGORICAL, score="score")

    drifted = ["normal", "skewed", "colour"]
    assert ours.drifted_columns == drifted
    assert [c for c, d in theirs.verdicts.items() if d] == drifted
    assert disagreements(ours, theirs) == {}
    assert ours.prediction is not None and ours.prediction.drifted
    assert theirs.prediction is not None and theirs.prediction.drifted
    assert theirs.drifted_share == ours.share_drifted == 0.5
    assert theirs.dataset_drift and ours.dataset_drift


def _assert_identical(ours, theirs, columns: list[str]) -> None:
    for column in columns:
        mine = ours.prediction if column == "score" else ours.columns[column]
        other = theirs.prediction if column == "score" else theirs.columns[column]
        assert (mine.method, mine.threshold, mine.drifted) == (
            other.method,
            other.threshold,
            other.drifted,
        ), column
        assert mine.score == pytest.approx(other.score, rel=1e-9, abs=1e-12), column


def test_identical_small_sample_uses_p_values_and_agrees(tmp_path: Path) -> None:
    """Up to 1000 reference values Evidently switches to KS / chi-squared / z-tests."""
    reference = frame(5000, seed=21, nan_rate=0.05)
    current = frame(
        5000,
        seed=22,
        shift=0.15,
        mix={"red": 0.45, "green": 0.3, "blue": 0.2, "teal": 0.05},  # teal: unseen
        score_power=1.3,
        nan_rate=0.1,
    )
    args = {"numeric": NUMERIC, "categorical": CATEGORICAL, "p_value": 0.01, "score": "score"}
    theirs = evidently_report(
        reference, current, path=tmp_path / "small.html", sample_rows=800, seed=5, **args
    )
    ref_sample, cur_sample = evidently_sample(reference, current, ALL, 800, 5)
    ours = compute_drift(ref_sample, cur_sample, **args)

    _assert_identical(ours, theirs, ALL)
    methods = {c: d.method for c, d in ours.columns.items()}
    assert methods == {
        "normal": "ks",
        "skewed": "ks",
        "count": "chisquare",
        "binary": "z",
        "colour": "chisquare",
        "flag": "z",
    }
    assert {d.threshold for d in theirs.columns.values()} == {0.01}  # our p_value, not 0.05
    colour = ours.columns["colour"]
    assert colour.unseen_categories == ("teal",) and colour.score == 0.0 and colour.drifted
    assert ours.columns["normal"].missing_reference > 0  # NaN really were dropped
    assert ours.columns["normal"].n_reference + ours.columns["normal"].missing_reference == 800


def test_identical_large_sample_agrees_and_skips_an_empty_column(tmp_path: Path) -> None:
    reference = frame(6000, seed=31, nan_rate=0.02)
    current = frame(6000, seed=32, shift=0.08, mix={"red": 0.4, "green": 0.35, "blue": 0.25})
    current["skewed"] = float("nan")  # gone from the current data
    args = {"numeric": NUMERIC, "categorical": CATEGORICAL, "score": "score"}
    theirs = evidently_report(
        reference, current, path=tmp_path / "large.html", sample_rows=3000, seed=9, **args
    )
    ref_sample, cur_sample = evidently_sample(reference, current, ALL, 3000, 9)
    ours = compute_drift(ref_sample, cur_sample, **args)

    assert theirs.skipped == {"skewed": "no values in the current sample"}
    skewed = ours.columns["skewed"]
    assert (skewed.method, skewed.drifted) == ("missing", True)
    tested = [c for c in ALL if c != "skewed"]
    _assert_identical(ours, theirs, tested)
    assert {theirs.columns[c].method for c in theirs.columns} == {"wasserstein", "jensenshannon"}
    # Evidently's share is over the 5 columns it could test; ours also counts the empty one.
    evidently_drifted = sum(theirs.verdicts.values())
    assert theirs.drifted_share == evidently_drifted / 5
    assert ours.share_drifted == (evidently_drifted + 1) / 6


def test_sample_is_seeded_and_the_same_for_every_input_type(tmp_path: Path) -> None:
    reference, current = frame(4000, seed=41), frame(3000, seed=42)
    ref_a, cur_a = evidently_sample(reference, current, ALL, 1000, seed=3)
    ref_b, cur_b = evidently_sample(
        pa.Table.from_pandas(reference), pa.Table.from_pandas(current), ALL, 1000, seed=3
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.register("ref_frame", reference)
    con.execute("CREATE TABLE reference AS SELECT * FROM ref_frame")
    ref_c, _ = evidently_sample(con.table("reference"), current, ALL, 1000, seed=3)
    for sample in (ref_b, ref_c):
        pd.testing.assert_frame_equal(sample, ref_a)
    pd.testing.assert_frame_equal(cur_b, cur_a)
    assert len(ref_a) == len(cur_a) == 1000
    ref_d, _ = evidently_sample(reference, current, ALL, 1000, seed=4)
    assert not ref_d.equals(ref_a)
    whole, _ = evidently_sample(reference, current, ALL, 10_000, seed=3)
    pd.testing.assert_frame_equal(whole, reference[ALL])


def _days(current: pd.DataFrame, days: int = 2) -> pd.DataFrame:
    out = current.copy()
    out["_partition_date"] = [
        pd.Timestamp("2024-01-01").date() + pd.Timedelta(days=i % days) for i in range(len(out))
    ]
    return out


@pytest.mark.parametrize(
    ("policy", "shift", "rendered"),
    [
        ("on_drift", 0.0, False),
        ("on_drift", 1.0, True),
        ("always", 0.0, True),
        ("never", 1.0, False),
    ],
)
def test_the_report_is_rendered_as_the_policy_says(
    reference: pd.DataFrame, tmp_path: Path, policy: str, shift: float, rendered: bool
) -> None:
    """Evidently's HTML costs seconds per window: `on_drift` renders it only when a day drifted;
    the numbers are computed either way."""
    monitoring = MonitoringSection(evidently_report=policy, evidently_sample_rows=2000)
    current = _days(frame(6000, seed=21, shift=shift))
    path = tmp_path / f"{policy}_{shift}.html"
    drift = window_drift(
        reference, current, NUMERIC, CATEGORICAL, monitoring, report_path=path, seed=0
    )
    assert len(drift.days) == 2 and drift.window is not None
    assert drift.window.dataset_drift == (shift > 0)
    assert (drift.evidently is not None) == rendered == path.exists()


def test_a_drifted_pooled_window_alone_does_not_render(reference: pd.DataFrame) -> None:
    """The pooled window is judged with Evidently's fixed thresholds, which every flights month
    of 2013 exceeded against its 90-day window: only the days' verdicts (what the checks judge)
    decide."""
    monitoring = MonitoringSection(evidently_report="on_drift")

    def drift(shift: float):
        current = _days(frame(6000, seed=21, shift=shift))
        return window_drift(
            reference, current, NUMERIC, CATEGORICAL, monitoring, report_path=None, seed=0
        )

    calm, shifted = drift(0.0), drift(1.0)
    assert shifted.window.dataset_drift and not calm.window.dataset_drift
    assert not wants_evidently(monitoring, calm.days.values(), shifted.window)
    assert wants_evidently(monitoring, shifted.days.values(), calm.window)
