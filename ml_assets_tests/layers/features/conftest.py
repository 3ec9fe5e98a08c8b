"""Fixtures for the features layer: a small real warehouse built once, copied into each test.

Building validated flights through real Dagster runs costs a few seconds; the tests then change
that warehouse in different ways, so each one gets its own copy of the DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from ml_assets import settings
from ml_assets.core.spec import DERIVATIONS, DatasetSpec, load_spec, read_spec_mapping
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.layers.features.assets import build_features_assets
from ml_assets.layers.features.checks import build_features_checks
from ml_assets.resources.warehouse import warehouse_resource
from ml_assets_tests.conftest import FLIGHTS_SPEC, build_flights_warehouse

FIRST_DAY, LAST_DAY = "2013-01-01", "2013-01-12"
# The bundled features written by hand as one SQL file (the bare benchmark script runs it): the
# form the SQL-contract tests edit, and the reference the declared form must equal.
HAND_WRITTEN_SQL = Path(__file__).parents[3] / "benchmarks" / "sql" / "flights_features.sql"


def materialize_features(
    spec: DatasetSpec,
    instance: dg.DagsterInstance,
    start: str,
    end: str | None = None,
    *,
    checks: bool = True,
    extra: list[dg.AssetsDefinition] = (),
) -> dg.ExecuteInProcessResult:
    """One real run of `<ds>/features` (and its checks) over [start, end] on the test warehouse."""
    features = build_features_assets(spec)[-1]
    assets = [features, *(build_features_checks(spec) if checks else []), *extra]
    window = (
        {"partition_key": start} if end is None else {"tags": {RANGE_START: start, RANGE_END: end}}
    )
    return dg.materialize(
        assets,
        instance=instance,
        resources={"warehouse": warehouse_resource()},
        raise_on_error=False,
        **window,
    )


def checks_by_name(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {ev.check_name: ev for ev in result.get_asset_check_evaluations()}


def query(sql: str, params: dict | list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return conn.execute(sql, params or {}).fetchall()


@pytest.fixture(scope="session")
def template_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Validated flights for 2013-01-01..12 plus the reference tables.

    Built once per session with the layers' own functions (the code their assets run); the
    Dagster runs of raw and validate are covered by their own tests, this only saves time.
    """
    home = tmp_path_factory.mktemp("features_template")
    (home / "data").mkdir()
    first, last = dt.date.fromisoformat(FIRST_DAY), dt.date.fromisoformat(LAST_DAY)
    return build_flights_warehouse(home, first, last, features=False)


@pytest.fixture
def flights_home(home: Path, template_warehouse: Path) -> Path:
    """A test's own copy of the template warehouse, under its temp ML_ASSETS_HOME."""
    target = settings.warehouse_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_warehouse, target)
    return home


@pytest.fixture
def spec_copy(home: Path) -> Callable[..., DatasetSpec]:
    """The flights spec with every feature hand-written in SQL, edited, in the test home.

    `edit` maps a text in the hand-written features.sql to its replacement (each must occur);
    `columns` overrides fields of `features.columns` entries.
    """

    def make(
        edit: dict[str, str] | None = None, columns: dict[str, dict] | None = None
    ) -> DatasetSpec:
        sql = HAND_WRITTEN_SQL.read_text()
        for old, new in (edit or {}).items():
            assert old in sql, f"{old!r} is not in features.sql"
            sql = sql.replace(old, new)
        folder = home / "specs"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "features.sql").write_text(sql)
        raw = read_spec_mapping(FLIGHTS_SPEC)
        raw["features"]["sql"] = ["features.sql"]
        raw["features"].pop("lookups", None)
        for column, fields in raw["features"]["columns"].items():
            for derivation in DERIVATIONS:
                fields.pop(derivation, None)
            fields.update((columns or {}).get(column, {}))
        (folder / "flights.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        return load_spec(folder / "flights.yaml")

    return make


@pytest.fixture(params=["declared", "hand_written"])
def either_form(request: pytest.FixtureRequest, flights_spec, spec_copy) -> DatasetSpec:
    """The bundled flights features in both forms, for the tests both must pass."""
    return flights_spec if request.param == "declared" else spec_copy()
