"""What each `training.search.method` costs and finds on flights, outside the graph.

Builds raw -> features for the first `--days` of 2013 in a scratch folder (the layers' own
functions), writes the training set of the flights spec's window ending on the last day, and
runs `search_family` for each method with the same budget and seed: wall and CPU seconds, the
trials (pruned ones under optuna), the best validation AUC and that model's AUC on the test
split. Prints JSON. Used to decide the default method (README, "Training, tracking, registry").

    .venv/bin/python -m benchmarks.search_methods [--days 118] [--budget 8] [--family xgboost]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import duckdb

from ml_assets.core.matrix import declared_schema, fit_schema
from ml_assets.core.predictor import predict
from ml_assets.core.spec import load_spec
from ml_assets.layers.features.logic import write_features
from ml_assets.layers.features.query import load_feature_files
from ml_assets.layers.features.reference import load_reference_tables
from ml_assets.layers.ingest.raw import write_raw
from ml_assets.layers.train.dataset import plan_window, read_training_set, write_training_set
from ml_assets.layers.train.families import metrics
from ml_assets.layers.train.search import search_family
from ml_assets.layers.train.training import to_split
from ml_assets.layers.validate.logic import write_validated

FLIGHTS = Path(__file__).resolve().parent.parent / "ml_assets" / "defs" / "flights" / "defs.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=118, help="days of 2013 to build (>= 91)")
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--family", choices=["xgboost", "linear"], default="xgboost")
    parser.add_argument("--methods", default="random,halving,optuna")
    args = parser.parse_args(argv)
    spec = load_spec(FLIGHTS)
    first = spec.partitions.start
    last = first + dt.timedelta(days=args.days - 1)
    now = dt.datetime.now(dt.UTC)
    out: dict[str, object] = {"days": f"{first}..{last}", "budget": args.budget}
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect(str(Path(tmp) / "w.duckdb")) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        t0 = time.perf_counter()
        write_raw(conn, spec, first, last, run_id="bench", ingested_at=now)
        write_validated(conn, spec, first, last, run_id="bench", validated_at=now)
        load_reference_tables(conn, spec)
        write_features(
            conn, spec, load_feature_files(spec), first, last, run_id="bench", featurized_at=now
        )
        # The newest day's labels are known a day later: the window ends the day before.
        write_training_set(
            conn, spec, plan_window(last - dt.timedelta(days=1), spec.training, spec)
        )
        rows = read_training_set(conn, spec)
        out["build_s"] = round(time.perf_counter() - t0, 1)
    parts = {s: rows[rows["_split"] == s] for s in ("train", "validation", "test")}
    schema = fit_schema(parts["train"], declared_schema(spec.features))
    train, valid, test = (to_split(parts[s], schema) for s in ("train", "validation", "test"))
    out["rows"] = {s: len(p) for s, p in parts.items()}
    for method in args.methods.split(","):
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = search_family(
            args.family,
            "binary",
            schema,
            train,
            valid,
            method=method,
            budget=args.budget,
            seed=spec.training.seed,
        )
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        test_auc = metrics("binary", test.y, predict(result.model, "binary", test.X))["roc_auc"]
        out[method] = {
            "seconds": round(seconds, 1),
            # CPU seconds of this process: less moved by other work on a shared machine.
            "cpu_seconds": round(cpu, 1),
            "trials": len(result.trials),
            "pruned": sum(t.state == "pruned" for t in result.trials),
            "validation_auc": round(result.validation_metrics["roc_auc"], 4),
            "test_auc": round(test_auc, 4),
            "params": result.params,
        }
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
