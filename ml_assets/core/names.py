"""Every name a dataset's graph uses, derived in one place from the dataset's name.

Asset keys, warehouse tables, op, job, sensor and schedule names are built here and nowhere else,
so a reader (or a test, or the retrain sensor) never reassembles `"<ds>__<asset>"` by hand and
two layers can never disagree on what a table is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import dagster as dg

from ml_assets.core.sql import ident

GOVERNANCE_SCHEMA = "governance"
DECISIONS_TABLE = f"{GOVERNANCE_SCHEMA}.model_decisions"

ASSETS = (
    "raw",
    "validated",
    "quarantine",
    "reference_tables",
    "features",
    "online_features",
    "online_requests",
    "online_summary",
    "online_performance",
    "training_set",
    "model_candidate",
    "model_evaluation",
    "champion_model",
    "model_card",
    "predictions",
    "drift_report",
    "performance",
)
# Warehouse tables of a dataset, all in the schema named after it.
TABLES = (
    "raw",
    "source_files",
    "source_file_days",
    "rejected_rows",
    "validated",
    "quarantine",
    "features",
    "training_set",
    "predictions",
    "explanations",
    "drift",
    "performance",
    "online_requests",
    "online_summary",
    "online_performance",
)


@dataclass(frozen=True)
class DatasetNames:
    """Names for one dataset: `names.key("raw")`, `names.table("features")`, `names.job("train")`."""

    dataset: str

    @cached_property
    def schema(self) -> str:
        """The dataset's warehouse schema, quoted for SQL."""
        return ident(self.dataset)

    def key(self, asset: str) -> dg.AssetKey:
        if asset not in ASSETS:
            raise KeyError(f"unknown asset {asset!r}; known: {ASSETS}")
        return dg.AssetKey([self.dataset, asset])

    def op(self, name: str) -> str:
        """The op (multi-asset) name of an asset, what run config addresses; `validate` is the
        one op that writes both `validated` and `quarantine`."""
        if name != "validate":
            self.key(name)
        return f"{self.dataset}__{name}"

    def table(self, name: str) -> str:
        """A warehouse table, schema-qualified and quoted: `"flights".features`."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; known: {TABLES}")
        return f"{self.schema}.{ident(name)}"

    def table_name(self, name: str) -> str:
        """A table as users type it (`flights.features`), for metadata and messages."""
        self.table(name)
        return f"{self.dataset}.{name}"

    def ref_table(self, lookup: str) -> str:
        """The reference table loaded from `lookups.<lookup>`, quoted for SQL."""
        return f"{self.schema}.{ident('ref_' + lookup)}"

    def ref_table_name(self, lookup: str) -> str:
        """The reference table as users type it (`flights.ref_weather`)."""
        return f"{self.dataset}.ref_{lookup}"

    def job(self, kind: str) -> str:
        """`daily_layers`, `train`, `monitor` or `rollback`."""
        return f"{self.dataset}__{kind}"

    def sensor(self, kind: str) -> str:
        """`landing`, `retrain` or `shadow_gate`."""
        return f"{self.dataset}__{kind}"

    def schedule(self, kind: str) -> str:
        return f"{self.dataset}__{kind}"

    def experiment(self) -> str:
        """The MLflow experiment of the dataset's training runs."""
        return f"ml_assets/{self.dataset}"
