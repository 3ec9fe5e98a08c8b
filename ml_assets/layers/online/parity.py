"""Training/serving parity: offline feature rows recomputed through the online path.

The offline features (`<ds>.features`, SQL over the warehouse) and the online ones (NumPy over a
snapshot's streams, DuckDB over its lookups) are two implementations of one definition. A model
trained on one and served on the other is only as good as their agreement, so before a snapshot
is published a sample of its newest day is recomputed from the same raw inputs (the validated
rows, without the label) and compared value by value.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from ml_assets.core.spec import DatasetSpec
from ml_assets.core.sql import ident, render
from ml_assets.layers.online.compute import OnlineFeatures

SQL = Path(__file__).parent / "sql"
REL_TOL, ABS_TOL = 1e-9, 1e-9


@dataclass(frozen=True)
class Parity:
    day: dt.date
    rows: int
    mismatched: dict[str, int]  # feature -> rows whose values differ
    samples: list[dict] = field(default_factory=list)  # a few (feature, key, offline, online)

    @property
    def passed(self) -> bool:
        return self.rows > 0 and not self.mismatched


def request_value(value: object) -> object:
    """A validated value as a client would send it in JSON."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    return value


def request_rows(frame: pd.DataFrame, spec: DatasetSpec, fields: set[str]) -> list[dict]:
    columns = [c for c in spec.contract.columns if c in fields]
    return [
        {c: request_value(v) for c, v in zip(columns, row, strict=True)}
        for row in frame[columns].astype("object").itertuples(index=False)
    ]


def same(offline: object, online: object) -> bool:
    off_null = offline is None or (isinstance(offline, float) and math.isnan(offline))
    on_null = online is None or (isinstance(online, float) and math.isnan(online))
    if off_null or on_null:
        return off_null and on_null
    if isinstance(offline, str) or isinstance(online, str):
        return str(offline) == str(online)
    return math.isclose(float(offline), float(online), rel_tol=REL_TOL, abs_tol=ABS_TOL)


def check_parity(
    conn: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    online: OnlineFeatures,
    day: dt.date,
    *,
    rows: int = 300,
    seed: int = 0,
) -> Parity:
    """Compare `rows` sampled offline feature rows of `day` with the online path's values."""
    features = list(spec.features.columns)
    sql = render(
        SQL / "parity_sample.sql",
        features_table=spec.names.table("features"),
        validated_table=spec.names.table("validated"),
        feature_columns=", ".join(f"f.{ident(c)} AS {ident('_offline_' + c)}" for c in features),
    )
    sample = conn.execute(sql, {"day": day, "seed": seed, "rows": rows}).df()
    if sample.empty:
        return Parity(day, 0, {})
    computed = online.features(request_rows(sample, spec, online.fields))
    mismatched: dict[str, int] = {}
    samples = []
    for column in features:
        offline = sample[f"_offline_{column}"].astype("object").tolist()
        values = computed[column].astype("object").tolist()
        bad = [i for i, (a, b) in enumerate(zip(offline, values, strict=True)) if not same(a, b)]
        if bad:
            mismatched[column] = len(bad)
            samples += [
                {
                    "feature": column,
                    "key": sample["_key"].iloc[i],
                    "offline": request_value(offline[i]),
                    "online": request_value(values[i]),
                }
                for i in bad[:3]
            ]
    return Parity(day, len(sample), mismatched, samples)
