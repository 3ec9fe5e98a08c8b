"""The bare pandas baseline: the flights transformations written directly in pandas/NumPy.

A typed read of the same source file, the contract's rules as one boolean mask, first row per
key, then the flights features of data/datasets/features/flights.sql by hand:

- label-delay-aware rolling rates: per group key, rows sorted by (group, event time) with running
  sums of labels and label counts; each row's frame [t - N days, t - label_delay_days] is found by
  `searchsorted` on a (group, minute) composite key, so every window is two lookups, no loop;
- same-day departure delays per key, counted from when each became known, the same way on a
  (group, half-minute) key over the departures sorted by known time;
- the weather as of departure with `merge_asof` (backward, per origin, stale after 6 hours, the
  earlier of duplicated local hours kept), the plane's age from a merge on `tailnum`.

The result (features plus the key columns) is written to Parquet: the graph and the DuckDB
script store theirs too. Specific to flights (the feature logic is flights.sql, by hand).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import timer
from ml_assets.core.spec import DatasetSpec

NUMERIC = {"INTEGER", "BIGINT", "DOUBLE"}
RATE_KEYS = {
    "carrier": ["carrier"],
    "origin": ["origin"],
    "dest": ["dest"],
    "route": ["origin", "dest"],
}
RATE_DAYS = (7, 28)
WEATHER = ["temp", "humid", "wind_speed", "precip", "visib"]
STALE_WEATHER = pd.Timedelta(hours=6)
MINUTES_PER_DAY = 1440
KEY_OUTPUT = ["year", "day", "flight"]  # with month, carrier, origin (features) they make the key


def read_typed(spec: DatasetSpec, path: Path, fmt: str) -> pd.DataFrame:
    """Contract columns with their types: numbers as float64, text as str, TIMESTAMPTZ as UTC."""
    columns = spec.contract.columns
    numeric = [c for c, col in columns.items() if col.type in NUMERIC]
    stamps = [c for c, col in columns.items() if col.type == "TIMESTAMPTZ"]
    if fmt == "parquet":
        df = pd.read_parquet(path, columns=list(columns))
        df[numeric] = df[numeric].astype("float64")
    else:
        csv = spec.source.csv
        df = pd.read_csv(
            path,
            sep=csv.delimiter,
            usecols=list(columns),
            na_values=csv.null_strings,
            keep_default_na=False,
            dtype={c: ("float64" if c in numeric else str) for c in columns if c not in stamps},
        )
    for c in stamps:
        df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
    return df


def contract_mask(spec: DatasetSpec, df: pd.DataFrame) -> np.ndarray:
    """Rows meeting the contract's rules (NULL passes a rule unless the column is required)."""
    keep = np.ones(len(df), dtype=bool)
    for c, col in spec.contract.columns.items():
        s = df[c]
        present = s.notna().to_numpy()
        if not col.nullable:
            keep &= present
        if col.type == "DOUBLE":
            keep &= ~np.isinf(s.to_numpy())
        if col.min is not None:
            keep &= ~present | (s >= col.min).to_numpy()
        if col.max is not None:
            keep &= ~present | (s <= col.max).to_numpy()
        if col.allowed is not None:
            keep &= ~present | s.isin(col.allowed).to_numpy()
    return keep


def validated(spec: DatasetSpec, df: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    df = df[contract_mask(spec, df)]
    df = df.drop_duplicates(subset=spec.contract.unique_key, keep="first")
    sched = df["sched_dep_time"].astype("int64")
    event = pd.to_datetime(
        pd.DataFrame(
            {
                "year": df["year"].astype("int64"),
                "month": df["month"].astype("int64"),
                "day": df["day"].astype("int64"),
                "hour": sched // 100,
                "minute": sched % 100,
            }
        )
    )
    day = event.dt.normalize()
    inside = ((day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))).to_numpy()
    df = df.assign(_event_time=event)[inside]
    label = df["arr_delay"].to_numpy()
    df["_label"] = np.where(np.isnan(label), np.nan, (label > 15).astype("float64"))
    return df.reset_index(drop=True)


def rolling_rates(df: pd.DataFrame, delay_days: int) -> dict[str, np.ndarray]:
    """Mean label over each row's group in [t - N days, t - delay_days], NULL labels skipped."""
    minutes = df["_event_time"].to_numpy().astype("datetime64[m]").astype("int64")
    label = df["_label"].to_numpy()
    known = ~np.isnan(label)
    span = int(minutes.max() - minutes.min()) + 60 * MINUTES_PER_DAY  # gap between group codes
    base = minutes - minutes.min() + 30 * MINUTES_PER_DAY  # keeps t - 28 days >= 0
    out = {}
    for name, keys in RATE_KEYS.items():
        code = df.groupby(keys, sort=False).ngroup().to_numpy().astype("int64")
        composite = code * span + base
        order = np.argsort(composite, kind="stable")
        sorted_keys = composite[order]
        sums = np.concatenate([[0.0], np.cumsum(np.where(known, label, 0.0)[order])])
        counts = np.concatenate([[0], np.cumsum(known[order])])
        hi = np.searchsorted(sorted_keys, composite - delay_days * MINUTES_PER_DAY, side="right")
        for days in RATE_DAYS:
            lo = np.searchsorted(sorted_keys, composite - days * MINUTES_PER_DAY, side="left")
            n = counts[hi] - counts[lo]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{name}_delay_rate_{days}d"] = np.where(
                    n > 0, (sums[hi] - sums[lo]) / n, np.nan
                )
    return out


# Same-day departure delays: (feature, keys, hours, aggregate).
DEPARTURE_SIGNALS = [
    ("origin_dep_delay_1h", ["origin"], 1, "mean"),
    ("origin_dep_delay_3h", ["origin"], 3, "mean"),
    ("origin_dep_delay_24h", ["origin"], 24, "mean"),
    ("origin_departed_1h", ["origin"], 1, "count"),
    ("origin_departed_3h", ["origin"], 3, "count"),
    ("carrier_dep_delay_3h", ["carrier"], 3, "mean"),
    ("carrier_origin_dep_delay_3h", ["carrier", "origin"], 3, "mean"),
    ("carrier_origin_departed_3h", ["carrier", "origin"], 3, "count"),
]


def departure_signals(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Mean and count of departure delays that became known in each row's last N hours.

    A delay is known at the actual departure (scheduled + delay), and never before just after
    the flight's own scheduled minute. Times are counted in half minutes, so "just after" is the
    odd half: an on-time or early flight is known at 2t + 1, a late one at 2(t + delay). The
    spec's bound on a delay's lag (lookback - N) never binds here: the contract caps delays at
    1800 minutes.
    """
    minutes = df["_event_time"].to_numpy().astype("datetime64[m]").astype("int64")
    delay = df["dep_delay"].to_numpy()
    departed = ~np.isnan(delay)
    half = 2 * minutes
    known = np.maximum(2 * (minutes + np.nan_to_num(delay).astype("int64")), half + 1)[departed]
    values = delay[departed]
    origin = half.min() - 2 * 26 * 60  # keeps t - 24 hours above the previous group's codes
    span = int(known.max() - origin) + 1
    out = {}
    for name, keys, hours, agg in DEPARTURE_SIGNALS:
        code = df.groupby(keys, sort=False).ngroup().to_numpy().astype("int64")
        arrival = code[departed] * span + (known - origin)
        order = np.argsort(arrival, kind="stable")
        sorted_arrivals = arrival[order]
        sums = np.concatenate([[0.0], np.cumsum(values[order])])
        query = code * span + (half - origin)
        hi = np.searchsorted(sorted_arrivals, query, side="right")
        lo = np.searchsorted(sorted_arrivals, query - 2 * 60 * hours, side="left")
        n = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, (sums[hi] - sums[lo]) / n, np.nan)
        out[name] = n.astype("float64") if agg == "count" else mean
    return out


def read_weather(path: Path) -> pd.DataFrame:
    # round_trip: pandas' default float parser can be 1 ulp off (e.g. wind_speed 10.357019999999999);
    # DuckDB parses exactly, and the comparison wants the same numbers, not nearly the same.
    w = pd.read_csv(path, na_values=["NA", ""], keep_default_na=False, float_precision="round_trip")
    w = w[w["hour"].notna()]
    w = w.assign(
        observed_at=pd.to_datetime(
            pd.DataFrame(
                {
                    "year": w["year"].astype("int64"),
                    "month": w["month"].astype("int64"),
                    "day": w["day"].astype("int64"),
                    "hour": w["hour"].astype("int64"),
                }
            )
        ),
        _utc=pd.to_datetime(w["time_hour"], utc=True, format="ISO8601"),
    )
    # The fall-back hour occurs twice in local time: keep the earlier observation.
    w = w.sort_values("_utc").drop_duplicates(["origin", "observed_at"], keep="first")
    return w[["origin", "observed_at", *WEATHER]].sort_values("observed_at")


def features(
    df: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame, delay_days: int
) -> pd.DataFrame:
    event = df["_event_time"]
    out = pd.DataFrame(
        {
            "year": df["year"].astype("int64"),
            "day": df["day"].astype("int64"),
            "flight": df["flight"].astype("int64"),
            "sched_dep_hour": event.dt.hour.astype("float64"),
            "weekday": event.dt.day_name(),
            "month": df["month"],
            "carrier": df["carrier"],
            "origin": df["origin"],
            "dest": df["dest"],
            "distance": df["distance"],
        }
    )
    plane_year = df[["tailnum"]].merge(
        planes[["tailnum", "year"]].drop_duplicates("tailnum"), on="tailnum", how="left"
    )["year"]
    out["plane_age"] = event.dt.year.to_numpy() - plane_year.to_numpy()
    # merge_asof needs both sides sorted on time; keep the original row order through `_row`.
    left = pd.DataFrame({"_row": np.arange(len(df)), "origin": df["origin"], "t": event})
    asof = pd.merge_asof(
        left.sort_values("t"),
        weather,
        left_on="t",
        right_on="observed_at",
        by="origin",
        direction="backward",
    ).sort_values("_row")
    fresh = (asof["observed_at"] >= asof["t"] - STALE_WEATHER).to_numpy()
    for c in WEATHER:
        out[c] = np.where(fresh, asof[c].to_numpy(), np.nan)
    for c, values in rolling_rates(df, delay_days).items():
        out[c] = values
    for c, values in departure_signals(df).items():
        out[c] = values
    return out


def run(
    spec: DatasetSpec,
    source_path: Path,
    source_format: str,
    lookup_paths: dict[str, list[Path]],
    out_path: Path,
    start: dt.date,
    end: dt.date,
) -> dict[str, object]:
    """Read, validate, featurize, write Parquet; return wall time and row counts."""
    with timer() as t:
        df = validated(spec, read_typed(spec, source_path, source_format), start, end)
        weather = read_weather(lookup_paths["weather"][0])
        planes = pd.read_csv(lookup_paths["planes"][0], na_values=["NA", ""])
        feats = features(df, weather, planes, spec.label.delay_days)
        feats.to_parquet(out_path, index=False)
    return {"seconds": t[0], "rows": {"validated": len(df), "features": len(feats)}}
