"""The human-readable drift report: Evidently's DataDriftPreset and DataSummaryPreset as HTML.

Evidently is slow on large data (~77 s for 1M x 20 numeric columns here), so the report runs on a
bounded, seeded random sample of each side, while the numbers the pipeline acts on come from
`drift.compute_drift` on every row. Both choose the test per column the same way, and the report
is given the same thresholds (a p-value for columns whose reference sample has at most 1000
values, a distance otherwise: Evidently's own switch), so their verdicts can be compared column
by column with `disagreements`. Evidently's verdicts are read from its own "drift" tests, not
recomputed.

Columns with no values on one side of the sample are left out (Evidently raises on them) and
listed in `EvidentlyOutcome.skipped`; `compute_drift` gives them the verdict "missing".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml_assets.layers.monitor.drift import (
    DEFAULT_DISTANCE,
    DEFAULT_DRIFT_SHARE,
    DEFAULT_P_VALUE,
    SMALL_SAMPLE_MAX_ROWS,
    DriftResult,
)

Frame = pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation


@dataclass(frozen=True)
class EvidentlyColumn:
    column: str
    method: str  # drift.Method names: wasserstein, jensenshannon, ks, chisquare, z
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class EvidentlyOutcome:
    """Evidently's verdicts, parsed from the report it rendered to `path`."""

    path: Path
    columns: dict[str, EvidentlyColumn]
    drifted_count: int
    drifted_share: float
    dataset_drift: bool
    rows_reference: int  # rows in the sample Evidently saw
    rows_current: int
    prediction: EvidentlyColumn | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def verdicts(self) -> dict[str, bool]:
        return {c: v.drifted for c, v in self.columns.items()}


def evidently_report(
    reference_df: Frame,
    current_df: Frame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    path: Path,
    sample_rows: int,
    seed: int,
    *,
    p_value: float = DEFAULT_P_VALUE,
    distance: float = DEFAULT_DISTANCE,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    score: str | None = None,
) -> EvidentlyOutcome:
    """Render Evidently's drift and summary report for a sample of each side to `path` (HTML)."""
    # Imported here: Evidently takes seconds to import and only this function needs it.
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    numeric_all = [*numeric, *([score] if score else [])]
    ref, cur = evidently_sample(
        reference_df, current_df, [*numeric_all, *categorical], sample_rows, seed
    )
    skipped = {
        c: f"no values in the {side} sample"
        for c in [*numeric_all, *categorical]
        for side, frame in (("reference", ref), ("current", cur))
        if frame[c].notna().sum() == 0
    }
    features = [c for c in [*numeric, *categorical] if c not in skipped]
    if not features:
        raise ValueError(f"every feature is empty on one side of the sample: {skipped}")
    kept = [c for c in [*numeric_all, *categorical] if c not in skipped]

    def threshold(column: str) -> float:
        # Evidently tests with a p-value up to 1000 reference values and a distance above.
        small = ref[column].notna().sum() <= SMALL_SAMPLE_MAX_ROWS
        return p_value if small else distance

    thresholds = {c: threshold(c) for c in features}
    metrics: list[Any] = [
        DataDriftPreset(columns=features, drift_share=drift_share, per_column_threshold=thresholds),
        DataSummaryPreset(columns=kept),
    ]
    if score and score not in skipped:
        metrics.append(ValueDrift(column=score, threshold=threshold(score)))
    definition = DataDefinition(
        numerical_columns=[c for c in numeric_all if c in kept],
        categorical_columns=[c for c in categorical if c in kept],
    )
    with warnings.catch_warnings():
        # Evidently's chi-squared divides by the zero expected count of an unseen category
        # (giving p = 0, the documented verdict); SciPy warns about it on every such column.
        warnings.filterwarnings("ignore", "divide by zero encountered", RuntimeWarning)
        snapshot = Report(metrics, include_tests=True).run(
            Dataset.from_pandas(cur[kept], data_definition=definition),
            Dataset.from_pandas(ref[kept], data_definition=definition),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    parsed = parse_drift(snapshot.dict())
    drifted = [c for c in features if parsed[c].drifted]
    share = len(drifted) / len(features)
    return EvidentlyOutcome(
        path=path,
        columns={c: parsed[c] for c in features},
        drifted_count=len(drifted),
        drifted_share=share,
        # Evidently's DatasetDriftMetric rule (its DriftedColumnsCount test fails at share >= it).
        dataset_drift=share >= drift_share,
        rows_reference=len(ref),
        rows_current=len(cur),
        prediction=parsed.get(score) if score else None,
        skipped=skipped,
    )


def evidently_sample(
    reference: Frame, current: Frame, columns: Sequence[str], sample_rows: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows Evidently is shown: at most `sample_rows` of each side, drawn with `seed`.

    Public so a caller can run `compute_drift` on exactly the same rows. Numeric +-inf become NaN
    (Evidently drops both from drift tests; NaN keeps its summary statistics finite).
    """
    if sample_rows < 1:
        raise ValueError(f"sample_rows must be positive, got {sample_rows}")
    rng = np.random.default_rng(seed)
    return _draw(reference, columns, sample_rows, rng), _draw(current, columns, sample_rows, rng)


def disagreements(ours: DriftResult, theirs: EvidentlyOutcome) -> dict[str, tuple[bool, bool]]:
    """Columns both tested whose verdicts differ: {column: (ours, Evidently's)}."""
    pairs = {c: (ours.columns[c].drifted, v.drifted) for c, v in theirs.columns.items()}
    if ours.prediction is not None and theirs.prediction is not None:
        pairs[ours.prediction.column] = (ours.prediction.drifted, theirs.prediction.drifted)
    return {c: p for c, p in pairs.items() if p[0] != p[1]}


def _draw(
    frame: Frame, columns: Sequence[str], rows: int, rng: np.random.Generator
) -> pd.DataFrame:
    if isinstance(frame, duckdb.DuckDBPyRelation):
        frame = frame.select(*columns).fetch_arrow_table()
    names = frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)
    absent = [c for c in columns if c not in names]
    if absent:
        raise ValueError(f"no column(s) {absent} to report on")
    if len(frame) > rows:
        picked = np.sort(rng.choice(len(frame), size=rows, replace=False))
        frame = frame.take(picked) if isinstance(frame, pa.Table) else frame.iloc[picked]
    out = frame.select(list(columns)).to_pandas() if isinstance(frame, pa.Table) else frame
    out = out[list(columns)].reset_index(drop=True).copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(
            out[column]
        ):
            values = out[column].to_numpy(dtype=np.float64, na_value=np.nan)
            out[column] = np.where(np.isfinite(values), values, np.nan)
    return out


def _method_names() -> dict[str, str]:
    """Evidently's display name of each default test -> its registered short name."""
    from evidently.legacy.calculations import stattests

    tests = (
        stattests.wasserstein_stat_test,
        stattests.jensenshannon_stat_test,
        stattests.ks_stat_test,
        stattests.chi_stat_test,
        stattests.z_stat_test,
    )
    return {t.display_name: t.name for t in tests}


def parse_drift(snapshot: dict[str, Any]) -> dict[str, EvidentlyColumn]:
    """Per-column drift from `Snapshot.dict()` of a report run with `include_tests=True`.

    Reads each ValueDrift metric (column, resolved method, threshold, score) and the status of
    its "drift" test (FAIL = drift detected), so the verdict is Evidently's own.
    """
    names = _method_names()
    status = {
        t["metric_config"]["metric_id"]: t["status"]
        for t in snapshot["tests"]
        if t["id"] == "drift" and t["metric_config"]["params"]["type"].endswith(":ValueDrift")
    }
    out: dict[str, EvidentlyColumn] = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift"):
            continue
        if metric["id"] not in status:
            raise RuntimeError(f"Evidently gave no drift test for column '{config['column']}'")
        method = config["method"]
        out[config["column"]] = EvidentlyColumn(
            column=config["column"],
            method=names.get(method, method),
            score=float(metric["value"]),
            threshold=float(config["threshold"]),
            drifted=status[metric["id"]] == "FAIL",
        )
    return out
