"""The warehouse resource bounds DuckDB's memory (`ML_ASSETS_DUCKDB_MEMORY_LIMIT`); unset, at
`DEFAULT_MEMORY_LIMIT`; `none` keeps DuckDB's default (80% of RAM)."""

from pathlib import Path

import duckdb
import pytest

from ml_assets.resources.warehouse import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_ENV, Warehouse


def _setting(warehouse: Warehouse) -> str:
    with warehouse.get_connection() as conn:
        return conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def _duckdb_says(limit: str | None) -> str:
    with duckdb.connect(config={"memory_limit": limit} if limit else {}) as conn:
        return conn.execute("SELECT current_setting('memory_limit')").fetchone()[0]


@pytest.mark.parametrize(
    ("env", "expected"),
    [(None, DEFAULT_MEMORY_LIMIT), ("700MB", "700MB"), ("none", None), ("2GB", "2GB")],
)
def test_sessions_get_the_configured_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, expected: str | None
) -> None:
    if env is None:
        monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    else:
        monkeypatch.setenv(MEMORY_LIMIT_ENV, env)
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"))
    assert _setting(warehouse) == _duckdb_says(expected)
    if expected is not None:
        assert _setting(warehouse) != _duckdb_says(None)  # not DuckDB's 80% of RAM


def test_a_memory_limit_in_connection_config_wins(tmp_path: Path) -> None:
    warehouse = Warehouse(
        database=str(tmp_path / "w.duckdb"), connection_config={"memory_limit": "600MB"}
    )
    assert _setting(warehouse) == _duckdb_says("600MB")
