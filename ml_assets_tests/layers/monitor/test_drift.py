"""compute_drift against the source of truth: Evidently's own test selection and statistics, SciPy.

Evidently's per-column machinery (`get_stattest` and the StatTest it returns) is called directly
here, on the same values, so each case checks both the method chosen and the score to 1e-9.
The full Report is exercised in test_evidently_report.py.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType
from scipy import stats
from threadpoolctl import threadpool_limits

from ml_assets.layers.monitor.drift import (
    ColumnDrift,
    categorical_drift,
    compute_drift,
    numeric_drift,
    prepare,
)
from ml_assets_tests.layers.monitor.synthetic import CATEGORICAL, NUMERIC, frame


def evidently_column(ref: pd.Series, cur: pd.Series, kind: str, threshold: float | None):
    """What Evidently's get_one_column_drift does for one column with default options."""
    ref = ref.replace([-np.inf, np.inf], np.nan).dropna()
    cur = cur.replace([-np.inf, np.inf], np.nan).dropna()
    column_type = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
    test = get_stattest(ref, cur, column_type, None)
    result = test(ref, cur, column_type, threshold)
    return test.name, float(result.drift_score), bool(result.drifted), result.actual_threshold


def ours(ref: pd.Series, cur: pd.Series, kind: str, p_value: float, distance: float) -> ColumnDrift:
    if kind == "numeric":
        return numeric_drift(
            "x", ref.to_numpy(float), cur.to_numpy(float), p_value=p_value, distance=distance
        )
    count = lambda s: (s.value_counts().to_dict(), int(s.isna().sum()))  # noqa: E731
    return categorical_drift("x", count(ref), count(cur), p_value=p_value, distance=distance)


rng = np.random.default_rng(7)
N, C = "numeric", "categorical"


def cat(n: int, values: list[str], p: list[float]) -> pd.Series:
    return pd.Series(rng.choice(values, n, p=p), dtype=object)


def exact(n: int, values: list[str], p: list[float]) -> pd.Series:
    """Exactly these proportions (shuffled): an unambiguous "same distribution" case."""
    return pd.Series(rng.permutation(np.repeat(values, np.round(np.array(p) * n).astype(int))))


CASES = {
    # name: (kind, reference, current, expected Evidently method)
    "ks_same": (N, pd.Series(rng.normal(0, 1, 800)), pd.Series(rng.normal(0, 1, 900)), "ks"),
    "ks_shift": (N, pd.Series(rng.normal(0, 1, 600)), pd.Series(rng.normal(0.4, 1, 700)), "ks"),
    "ks_big_current": (N, pd.Series(rng.normal(0, 1, 900)), pd.Series(rng.normal(0.1, 1, 20_000)), "ks"),
    "ks_ties": (N, pd.Series(rng.integers(0, 9, 700).astype(float)), pd.Series(rng.integers(0, 10, 800).astype(float)), "ks"),
    "wasserstein_same": (N, pd.Series(rng.normal(5, 2, 5000)), pd.Series(rng.normal(5, 2, 4000)), "wasserstein"),
    "wasserstein_shift": (N, pd.Series(rng.exponential(1, 3000)), pd.Series(rng.exponential(1.3, 6000)), "wasserstein"),
    "wasserstein_ties": (N, pd.Series(rng.integers(0, 30, 5000).astype(float)), pd.Series(rng.integers(2, 30, 5000).astype(float)), "wasserstein"),
    "numeric_few_values_small": (N, pd.Series(rng.integers(0, 4, 500).astype(float)), pd.Series(rng.integers(0, 5, 600).astype(float)), "chisquare"),
    "numeric_few_values_large": (N, pd.Series(rng.integers(0, 4, 5000).astype(float)), pd.Series(rng.integers(1, 5, 5000).astype(float)), "jensenshannon"),
    "numeric_binary_small": (N, pd.Series(rng.integers(0, 2, 400).astype(float)), pd.Series((rng.random(500) < 0.6).astype(float)), "z"),
    "numeric_constant_small": (N, pd.Series(np.full(300, 2.0)), pd.Series(np.full(200, 2.0)), "z"),
    "numeric_constant_large": (N, pd.Series(np.full(3000, 2.0)), pd.Series(np.full(2000, 2.5)), "jensenshannon"),
    "numeric_nan_inf": (N, pd.Series(np.r_[rng.normal(0, 1, 2000), [np.nan] * 50, [np.inf]]), pd.Series(np.r_[rng.normal(0.3, 1, 1500), [np.nan] * 500, [-np.inf] * 3]), "wasserstein"),
    # 1001 rows with 2 NaN: 999 values left, so Evidently picks the small-sample test.
    "numeric_nan_crosses_size_rule": (N, pd.Series(np.r_[rng.normal(0, 1, 999), [np.nan, np.nan]]), pd.Series(rng.normal(0, 1, 2000)), "ks"),
    "chisquare_same": (C, exact(700, ["a", "b", "c"], [0.5, 0.3, 0.2]), exact(800, ["a", "b", "c"], [0.49, 0.31, 0.2]), "chisquare"),
    "chisquare_unseen": (C, cat(700, ["a", "b", "c"], [0.5, 0.3, 0.2]), cat(800, ["a", "b", "c", "d"], [0.5, 0.28, 0.2, 0.02]), "chisquare"),
    "z_binary": (C, cat(400, ["y", "n"], [0.3, 0.7]), cat(600, ["y", "n"], [0.38, 0.62]), "z"),
    "js_same": (C, cat(5000, ["a", "b", "c"], [0.5, 0.3, 0.2]), cat(3000, ["a", "b", "c"], [0.5, 0.3, 0.2]), "jensenshannon"),
    "js_unseen": (C, cat(5000, ["a", "b", "c"], [0.5, 0.3, 0.2]), cat(3000, ["a", "b", "d"], [0.4, 0.3, 0.3]), "jensenshannon"),
    "js_missing_values": (C, pd.Series(["a", None, "b", np.nan] * 600, dtype=object), pd.Series(["a", "b", "b", None] * 700, dtype=object), "jensenshannon"),
}  # fmt: skip


# Evidently's chi-squared divides by a zero expected count for unseen categories (SciPy warns).
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.parametrize("p_value", [0.05, 0.01])
@pytest.mark.parametrize("name", list(CASES))
def test_method_score_and_verdict_match_evidently(name: str, p_value: float) -> None:
    kind, ref, cur, expected_method = CASES[name]
    got = ours(ref, cur, kind, p_value, 0.1)
    method = expected_method
    threshold = p_value if method in ("ks", "chisquare", "z") else 0.1
    ev_method, ev_score, ev_drifted, ev_threshold = evidently_column(ref, cur, kind, threshold)
    assert ev_method == expected_method  # the case exercises the rule it is named after
    assert got.method == ev_method
    assert got.score == pytest.approx(ev_score, rel=1e-9, abs=1e-12)
    assert got.drifted == ev_drifted
    assert got.threshold == ev_threshold


def test_cases_cover_both_verdicts() -> None:
    """Agreement only means something if some cases drift and some do not."""
    verdicts = {n: ours(r, c, k, 0.05, 0.1).drifted for n, (k, r, c, _) in CASES.items()}
    assert {"ks_shift", "wasserstein_shift", "chisquare_unseen", "js_unseen"} <= {
        n for n, d in verdicts.items() if d
    }
    assert not any(
        verdicts[n] for n in ("ks_same", "wasserstein_same", "chisquare_same", "js_same")
    )


@pytest.mark.parametrize(("n_ref", "n_cur"), [(20_000, 30_000), (800, 9000), (15_000, 500)])
def test_ks_matches_scipy(n_ref: int, n_cur: int) -> None:
    ref, cur = rng.normal(0, 1, n_ref), rng.normal(0.02, 1.1, n_cur)
    got = numeric_drift("x", ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert got.ks_statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert got.ks_p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_wasserstein_is_exact_on_unequal_sizes_with_ties() -> None:
    ref = rng.integers(0, 50, 200_000).astype(float)
    cur = rng.integers(0, 53, 130_001).astype(float)
    got = numeric_drift("x", ref, cur)
    assert got.method == "wasserstein"
    assert got.score == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-12)
    assert got.n_values == 53


@pytest.mark.parametrize("seed", range(4))
def test_a_small_day_against_a_large_window_is_exact(seed: int) -> None:
    """The shape of every monitored day (a few hundred rows against a prepared window, searched
    into rather than merged): ties, values outside the window's range on either side, one-value
    days. W1 to 1e-12 of SciPy's, the KS statistic to the bit, every distinct value counted."""
    gen = np.random.default_rng(seed)
    window = np.round(gen.normal(0, 30, 40_000)) if seed % 2 else gen.exponential(50, 40_000)
    prepared = prepare({"x": window}, ["x"], [])
    days = [
        np.round(gen.normal(5, 40, 700)) if seed % 2 else gen.exponential(60, 700),
        gen.choice(window, 300) + 1e4,  # entirely above the window
        gen.choice(window, 50) - 1e4,  # entirely below
        np.full(20, window[0]),  # one value, held by the window
        np.r_[window[:5], -1e6, 1e6],
    ]
    for day in days:
        got = compute_drift(prepared, {"x": day}, ["x"], []).columns["x"]
        expected_w1 = stats.wasserstein_distance(window, day)
        assert got.score * max(np.std(window), 0.001) == pytest.approx(expected_w1, rel=1e-12)
        assert got.ks_statistic == stats.ks_2samp(window, day, method="asymp").statistic
        assert got.n_values == np.unique(np.r_[window, day]).size


def test_missing_values_are_dropped_and_counted() -> None:
    ref = pd.DataFrame(
        {"x": [1.0, np.nan, np.inf, *range(2000)], "c": ["a", None, "b", *["a"] * 2000]}
    )
    cur = pd.DataFrame({"x": [np.nan] * 3 + list(range(2000)), "c": [None] * 3 + ["a", "b"] * 1000})
    result = compute_drift(ref, cur, ["x"], ["c"])
    x, c = result.columns["x"], result.columns["c"]
    assert (x.n_reference, x.missing_reference, x.n_current, x.missing_current) == (
        2001,
        2,
        2000,
        3,
    )
    assert (c.n_reference, c.missing_reference, c.n_current, c.missing_current) == (
        2002,
        1,
        2000,
        3,
    )
    assert not math.isnan(x.score) and not math.isnan(c.score)


@pytest.mark.parametrize(
    ("ref_values", "cur_values", "drifted", "note"),
    [
        ([1.0, 2.0, 3.0] * 10, [np.nan] * 30, True, "no values in the current"),
        ([np.nan] * 30, [1.0, 2.0, 3.0] * 10, True, "no values in the reference"),
        ([np.nan] * 30, [np.inf] * 30, False, "no values in the reference and current"),
    ],
)
def test_all_missing_side_gets_an_explicit_verdict(
    ref_values: list[float], cur_values: list[float], drifted: bool, note: str
) -> None:
    ref = pd.DataFrame({"x": ref_values, "c": [None if math.isnan(v) else "a" for v in ref_values]})
    cur = pd.DataFrame(
        {"x": cur_values, "c": [None if not math.isfinite(v) else "a" for v in cur_values]}
    )
    result = compute_drift(ref, cur, ["x"], ["c"])
    for col in result.columns.values():
        assert (col.method, col.drifted, col.note) == ("missing", drifted, note)
        assert math.isnan(col.score)
    assert result.share_drifted == (1.0 if drifted else 0.0)


def test_unseen_categories_are_reported_and_drive_chi_squared() -> None:
    ref = pd.DataFrame({"c": ["a", "b", "c"] * 200})
    cur = pd.DataFrame({"c": ["a", "b", "c"] * 190 + ["new"] * 25 + ["other"] * 5})
    small = compute_drift(ref, cur, [], ["c"]).columns["c"]
    assert small.method == "chisquare"
    assert (small.score, small.drifted) == (0.0, True)
    assert small.unseen_categories == ("new", "other")
    assert small.unseen_share == pytest.approx(30 / 600)
    # Large samples: the unseen category enters the Jensen-Shannon distance with reference
    # probability 0 and the verdict follows the distance, as in Evidently.
    big_ref, big_cur = pd.concat([ref] * 10), pd.concat([cur] * 10)
    few = compute_drift(big_ref, big_cur, [], ["c"]).columns["c"]
    assert few.method == "jensenshannon" and few.unseen_share == pytest.approx(0.05)
    assert few.drifted is (few.score >= 0.1)


def test_dataset_drift_share_and_prediction_drift() -> None:
    ref = frame(20_000, seed=1)
    cur = frame(
        20_000, seed=2, shift=0.5, mix={"red": 0.2, "green": 0.3, "blue": 0.5}, score_power=2
    )
    result = compute_drift(ref, cur, NUMERIC, CATEGORICAL, score="score")
    assert result.drifted_columns == ["normal", "skewed", "colour"]
    assert result.share_drifted == pytest.approx(3 / 6)
    assert result.dataset_drift  # Evidently's rule: share >= 0.5
    assert not compute_drift(ref, cur, NUMERIC, CATEGORICAL, drift_share=0.6).dataset_drift
    assert result.prediction is not None and result.prediction.drifted
    assert "score" not in result.columns  # prediction drift is not a feature in the share
    calm = compute_drift(ref, frame(20_000, seed=3), NUMERIC, CATEGORICAL, score="score")
    assert (
        calm.drifted_columns == [] and calm.prediction is not None and not calm.prediction.drifted
    )
    table = result.to_frame()
    assert list(table["column"]) == [*NUMERIC, *CATEGORICAL, "score"]
    assert list(table["is_prediction"]) == [False] * 6 + [True]


def test_input_types_give_identical_results(tmp_path: Path) -> None:
    ref = frame(3000, seed=4, nan_rate=0.05)
    cur = frame(
        2500, seed=5, shift=0.2, mix={"red": 0.4, "green": 0.3, "purple": 0.3}, nan_rate=0.1
    )
    args = (NUMERIC, CATEGORICAL)
    expected = compute_drift(ref, cur, *args, score="score").to_frame()

    arrow = compute_drift(
        pa.Table.from_pandas(ref), pa.Table.from_pandas(cur), *args, score="score"
    )
    mapping = compute_drift(
        {c: ref[c].to_numpy() for c in ref},
        {c: cur[c].to_numpy() for c in cur},
        *args,
        score="score",
    )
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.register("ref_frame", ref)
    con.register("cur_frame", cur)
    con.execute(
        "CREATE TABLE features AS SELECT *, 'reference' AS side FROM ref_frame"
        " UNION ALL BY NAME SELECT *, 'current' AS side FROM cur_frame"
    )
    # How an asset would read a window: a relation over a query with bound parameters.
    in_db = compute_drift(
        con.sql("SELECT * FROM features WHERE side = ?", params=["reference"]),
        con.sql("SELECT * FROM features WHERE side = ?", params=["current"]),
        *args,
        score="score",
    )
    for other in (arrow, mapping, in_db):
        pd.testing.assert_frame_equal(other.to_frame(), expected)


def test_a_prepared_reference_gives_identical_results() -> None:
    """Sorting and counting the reference once (calibration and every monitored day reuse it)
    changes nothing, to the bit, for every input type."""
    ref = frame(12_000, seed=6, nan_rate=0.05)
    prepared = prepare(ref, [*NUMERIC, "score"], CATEGORICAL)
    for seed, shift in ((7, 0.0), (8, 0.3)):
        cur = frame(900, seed=seed, shift=shift, nan_rate=0.1)
        expected = compute_drift(ref, cur, NUMERIC, CATEGORICAL, score="score").to_frame()
        got = compute_drift(prepared, cur, NUMERIC, CATEGORICAL, score="score").to_frame()
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    both = compute_drift(prepared, prepare(ref, NUMERIC, CATEGORICAL, side="current"), NUMERIC, [])
    assert both.share_drifted == 0.0 and both.rows_current == len(ref)
    with pytest.raises(
        ValueError, match=r"reference was prepared without the column\(s\) \['score'\]"
    ):
        compute_drift(prepare(ref, NUMERIC, []), cur, NUMERIC, [], score="score")


def test_the_distance_does_not_depend_on_blas_threads() -> None:
    """The same data give the same score on a 1-core and a many-core machine (a BLAS dot product
    splits long vectors over its threads, and rounds differently with each split)."""
    ref, cur = rng.normal(0, 1, 60_000), rng.normal(0.05, 1.2, 30_000)
    scores = []
    for threads in (1, 2, 3):
        with threadpool_limits(threads, user_api="blas"):
            scores.append(numeric_drift("x", ref, cur).score)
    assert scores[0] == scores[1] == scores[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"numeric": ["nope"]}, r"reference has no column\(s\) \['nope'\]"),
        (
            {"numeric": ["colour"], "categorical": []},
            "column 'colour' is declared numeric but has type object",
        ),
        ({"categorical": ["normal", "colour"], "numeric": ["normal"]}, "listed more than once"),
        ({"numeric": [], "categorical": []}, "at least one"),
        ({"p_value": 1.5}, "p_value must be in"),
        ({"distance": 0}, "distance must be positive"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs: dict, message: str) -> None:
    args = {"numeric": NUMERIC, "categorical": CATEGORICAL, **kwargs}
    with pytest.raises(ValueError, match=message):
        compute_drift(frame(100, seed=1), frame(100, seed=2), **args)


def test_unsupported_table_type_is_refused() -> None:
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        compute_drift([1, 2, 3], frame(10, seed=1), ["normal"], [])  # type: ignore[arg-type]


def test_full_data_is_fast() -> None:
    """500k x 500k rows, 4 numeric columns: exact statistics in well under a few seconds."""
    gen = np.random.default_rng(0)
    cols = [f"x{i}" for i in range(4)]
    ref = pd.DataFrame({c: gen.normal(size=500_000) for c in cols})
    cur = pd.DataFrame({c: gen.normal(size=500_000) for c in cols})
    start = time.perf_counter()
    result = compute_drift(ref, cur, cols, [])
    elapsed = time.perf_counter() - start
    assert result.rows_reference == result.columns["x0"].n_reference == 500_000
    assert elapsed < 10, f"{elapsed:.1f} s"  # ~1 s on the 2-core dev box; generous for CI load
