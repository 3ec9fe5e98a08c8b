"""Drift statistics: compute_drift on every row vs Evidently's DataDriftPreset on the same rows.

Reference and current are `rows` x 20 numeric features (seeded). The current data shifts 5 of
the features (the mean of 3 by half a standard deviation, the scale of 2 by 1.5x), so one run
checks agreement on drifted and undrifted columns alike. compute_drift is timed as the median of
`repeats` runs; Evidently (DataDriftPreset only, no HTML) once, since it takes ~80 s at 1M rows.

    .venv/bin/python -m benchmarks.drift            # 1M rows
    .venv/bin/python -m benchmarks.drift --quick    # 100k rows
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

from ml_assets.layers.monitor.drift import compute_drift

FEATURES = 20
SEED = 2013
MEAN_SHIFTED = ("f00", "f01", "f02")
SCALE_SHIFTED = ("f03", "f04")


def generate(rows: int, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and shifted current data: a mix of shapes, so the statistics see ties too."""
    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(FEATURES)]

    def side(shifted: bool) -> pd.DataFrame:
        cols = {}
        for i, name in enumerate(names):
            shift = 0.5 if shifted and name in MEAN_SHIFTED else 0.0
            scale = 1.5 if shifted and name in SCALE_SHIFTED else 1.0
            match i % 4:
                case 0:
                    cols[name] = rng.normal(shift, scale, rows)
                case 1:
                    cols[name] = (rng.exponential(1.0, rows) + shift) * scale
                case 2:
                    cols[name] = rng.uniform(0, np.sqrt(12), rows) * scale + shift
                case _:  # integer-valued: many ties
                    cols[name] = np.round(rng.normal(50 + 10 * shift, 10 * scale, rows))
        return pd.DataFrame(cols)

    return side(False), side(True)


def _evidently(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, dict[str, Any]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from ml_assets.layers.monitor.evidently_report import parse_drift

    definition = DataDefinition(numerical_columns=list(reference.columns))
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    elapsed = time.perf_counter() - start
    return elapsed, parse_drift(snapshot.dict())


def run(rows: int, repeats: int = 3) -> dict[str, Any]:
    reference, current = generate(rows)
    numeric = list(reference.columns)
    timings, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = compute_drift(reference, current, numeric, [])
        timings.append(time.perf_counter() - start)
    assert result is not None
    evidently_s, theirs = _evidently(reference, current)
    ours = {c: d.drifted for c, d in result.columns.items()}
    score_gap = max(abs(result.columns[c].score - theirs[c].score) for c in numeric)
    median = statistics.median(timings)
    return {
        "rows": rows,
        "features": len(numeric),
        "ours_s_median": round(median, 3),
        "ours_s_runs": [round(t, 3) for t in timings],
        "evidently_s": round(evidently_s, 3),
        "speedup": round(evidently_s / median, 1),
        "verdicts_agree": ours == {c: theirs[c].drifted for c in numeric},
        "methods_agree": all(result.columns[c].method == theirs[c].method for c in numeric),
        "max_score_abs_diff": score_gap,
        "drifted_ours": [c for c, d in ours.items() if d],
        "drifted_evidently": [c for c in numeric if theirs[c].drifted],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows instead of 1M")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    print(json.dumps(run(rows, args.repeats)))


if __name__ == "__main__":
    main()
