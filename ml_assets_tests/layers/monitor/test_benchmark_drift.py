"""The drift benchmark's `run` (imported by the benchmark harness) on a small size."""

from __future__ import annotations

import pytest

from benchmarks.drift import MEAN_SHIFTED, SCALE_SHIFTED, run

# Slow tier (benchmark smoke): `make test` runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow


def test_benchmark_run_agrees_with_evidently_on_known_shifts() -> None:
    result = run(rows=20_000, repeats=1)
    assert {"rows", "features", "ours_s_median", "evidently_s", "speedup", "verdicts_agree"} <= set(
        result
    )
    assert (result["rows"], result["features"]) == (20_000, 20)
    assert result["verdicts_agree"] and result["methods_agree"]
    assert result["drifted_ours"] == sorted([*MEAN_SHIFTED, *SCALE_SHIFTED])
    assert result["max_score_abs_diff"] < 1e-9
    assert result["ours_s_median"] > 0 and result["evidently_s"] > 0
