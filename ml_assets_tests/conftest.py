"""Shared fixtures: a temp project home, real DuckDB files, real Dagster instances."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec, load_spec
from ml_assets.layers.features.logic import write_features
from ml_assets.layers.features.query import load_feature_files
from ml_assets.layers.features.reference import load_reference_tables
from ml_assets.layers.ingest.raw import write_raw
from ml_assets.layers.validate.logic import write_validated

REPO = Path(__file__).resolve().parent.parent
FLIGHTS_SPEC = REPO / "ml_assets" / "defs" / "flights" / "defs.yaml"

ORDERS_HEADER = "order_id,ordered_at,customer,amount,status,delivery_days"

# A second, user-style dataset: a CSV with a regression label, declared in YAML only.
ORDERS_SPEC = """
name: orders
source: {{files: ["{files}"], format: csv}}
partitions: {{start: 2024-01-01, end: {end}}}
event_time: {{column: ordered_at, timezone: UTC}}
label: {{kind: regression, column: delivery_days, delay_days: 7}}
contract:
  unique_key: [order_id]
  columns:
    order_id: {{type: BIGINT, nullable: false}}
    ordered_at: {{type: TIMESTAMPTZ, nullable: false}}
    customer: {{type: VARCHAR, nullable: false}}
    amount: {{type: DOUBLE, min: 0, max: 10000}}
    status: {{type: VARCHAR, nullable: false, allowed: [new, paid, shipped]}}
    delivery_days: {{type: DOUBLE, max_null_rate: 0.5}}
slices: [status]
quality: {{max_quarantine_rate: 0.2, trailing_days: 4}}
"""


def build_flights_warehouse(home: Path, first: dt.date, last: dt.date, *, features: bool) -> Path:
    """Flights for [first, last] through validated (and features) under `home`, built once per
    session by fixtures with the layers' own functions (the code their assets run; the Dagster
    runs of those layers are tested in their own suites) to save minutes of test time."""
    spec = load_spec(FLIGHTS_SPEC)
    now = dt.datetime.now(dt.UTC)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ML_ASSETS_HOME", str(home))
        path = settings.warehouse_path()
        path.parent.mkdir(parents=True)
        with duckdb.connect(str(path)) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            write_raw(conn, spec, first, last, run_id="template", ingested_at=now)
            write_validated(conn, spec, first, last, run_id="template", validated_at=now)
            load_reference_tables(conn, spec)
            if features:
                files = load_feature_files(spec)
                write_features(conn, spec, files, first, last, run_id="template", featurized_at=now)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private project home: warehouse, cache, landing and reports all go under it."""
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def flights_spec() -> DatasetSpec:
    return load_spec(FLIGHTS_SPEC)


def write_orders_spec(
    home: Path, files: str = "data/orders/*.csv", end: str = "2024-01-31"
) -> DatasetSpec:
    path = home / "specs" / "orders.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ORDERS_SPEC.format(files=files, end=end))
    return load_spec(path)


def orders_rows(day: dt.date, n: int, start_id: int = 1) -> list[str]:
    """n clean order rows on `day`, deterministic."""
    rows = []
    for i in range(n):
        oid = start_id + i
        status = ("new", "paid", "shipped")[oid % 3]
        delivery = "" if oid % 5 == 0 else f"{1 + oid % 6}.5"
        rows.append(
            f"{oid},{day}T{8 + i % 10:02d}:00:00Z,c{oid % 7},{10.0 + oid},{status},{delivery}"
        )
    return rows


def write_csv(path: Path, lines: list[str], header: str = ORDERS_HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


@pytest.fixture
def orders_spec(home: Path) -> DatasetSpec:
    """The orders dataset with 3 clean days (2024-01-01..03, 5 rows each) as its source."""
    lines = []
    for k in range(3):
        lines += orders_rows(dt.date(2024, 1, 1) + dt.timedelta(days=k), 5, start_id=1 + 5 * k)
    write_csv(home / "data" / "orders" / "base.csv", lines)
    return write_orders_spec(home)


@pytest.fixture
def warehouse(home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    path = settings.warehouse_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path))
    conn.execute("SET TimeZone = 'UTC'")
    yield conn
    conn.close()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance with in-memory storage: the same run, event-log and check APIs as
    the sqlite instance of `make dev` (which the concurrency and main-job tests use), created in
    0.1 s instead of 1.4 s."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst
