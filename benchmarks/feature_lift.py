"""What the features are worth, outside the graph: a fixed XGBoost on the warehouse's features.

Trains on Jan-Oct 2013 and scores December, once with every flights feature and once without
the same-day departure-delay signals (the `known_at` windows), and prints both AUCs as JSON.
A bare reference for the replay's realized AUC: the same features, one long training window, no
search. Needs a built `flights.features` (`make run`); reads the warehouse read-only.

    .venv/bin/python -m benchmarks.feature_lift [--warehouse PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb
import numpy as np
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from ml_assets import settings
from ml_assets.core.spec import load_spec

SPEC = Path(__file__).resolve().parent.parent / "ml_assets" / "defs" / "flights" / "defs.yaml"
TRAIN_BEFORE, TEST_FROM = np.datetime64("2013-11-01"), np.datetime64("2013-12-01")
PARAMS = {
    "n_estimators": 400,
    "max_depth": 6,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "tree_method": "hist",
    "enable_categorical": True,
    "random_state": 0,
    "n_jobs": 2,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, default=settings.warehouse_path())
    args = parser.parse_args(argv)
    spec = load_spec(SPEC)
    columns = spec.features.columns
    same_day = [c for c, f in columns.items() if f.window is not None and f.window.known_at]
    with duckdb.connect(str(args.warehouse), read_only=True) as conn:
        df = conn.execute("SELECT * FROM flights.features WHERE _label IS NOT NULL").df()
    for c in spec.features.categorical:
        df[c] = df[c].astype("category")
    train = df[df["_partition_date"] < TRAIN_BEFORE]
    test = df[df["_partition_date"] >= TEST_FROM]
    out = {"train_rows": len(train), "test_rows": len(test), "same_day_features": same_day}
    for name, use in (("all_features", list(columns)), ("without_same_day", None)):
        use = use or [c for c in columns if c not in same_day]
        model = xgb.XGBClassifier(**PARAMS).fit(train[use], train["_label"])
        score = model.predict_proba(test[use])[:, 1]
        out[f"december_auc_{name}"] = round(float(roc_auc_score(test["_label"], score)), 4)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
