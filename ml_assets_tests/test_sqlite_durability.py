"""The local SQLite stores trade fsync-per-commit for speed, and the setting can be put back."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.storage.event_log.sqlite import sqlite_event_log

from ml_assets import sqlite_durability

PROBE = """
import sqlalchemy, sys
from ml_assets import definitions  # installs the hook, as every code-location load does
engine = sqlalchemy.create_engine(f"sqlite:///{sys.argv[1]}", poolclass=sqlalchemy.pool.NullPool)
with engine.connect() as conn:
    print(conn.exec_driver_sql("PRAGMA synchronous").scalar())
"""


def probe(db: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(db)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_loading_the_code_location_turns_sqlite_fsync_off(tmp_path: Path) -> None:
    # SQLite reports synchronous as 0 (OFF), 1 (NORMAL), 2 (FULL, its default).
    assert probe(tmp_path / "a.db") == "0"


def test_the_level_is_configurable(tmp_path: Path) -> None:
    assert probe(tmp_path / "b.db", ML_ASSETS_SQLITE_SYNCHRONOUS="full") == "2"


def test_an_unknown_level_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_ASSETS_SQLITE_SYNCHRONOUS", "sometimes")
    with pytest.raises(ValueError, match="ML_ASSETS_SQLITE_SYNCHRONOUS='SOMETIMES'"):
        sqlite_durability.sqlite_synchronous()


def test_the_event_log_builds_one_engine_per_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every event opens connections; only the first per shard file builds an engine (whose
    compiled-statement cache the rest then reuse): a run logging 10x more events builds no more
    engines, and every event is still stored."""
    sqlite_durability.install()
    built: list[str] = []
    real = sqlalchemy.create_engine

    def counting(url: str, *args: object, **kwargs: object) -> sqlalchemy.engine.Engine:
        built.append(str(url))
        return real(url, *args, **kwargs)

    monkeypatch.setattr(sqlalchemy, "create_engine", counting)
    monkeypatch.setattr(sqlite_event_log, "create_engine", counting)  # Dagster's own name for it

    def job_logging(events: int) -> dg.AssetsDefinition:
        @dg.asset(
            name=f"numbers_{events}",
            check_specs=[dg.AssetCheckSpec("ok", asset=f"numbers_{events}")],
        )
        def numbers():
            for _ in range(events):
                yield dg.AssetObservation(asset_key=f"numbers_{events}")
            yield dg.MaterializeResult(metadata={"n": events})
            yield dg.AssetCheckResult(passed=True)

        return numbers

    engines, stored = [], []
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        dg.materialize([job_logging(1)], instance=instance)  # the index shard's engine
        for events in (5, 50):
            before = len(built)
            result = dg.materialize([job_logging(events)], instance=instance)
            assert result.success
            engines.append([u for u in built[before:] if "/history/runs/" in u])
            stored.append(len(instance.all_logs(result.run_id)))
    # The run's own shard once; the index shard only where Dagster builds engines outside
    # `_connect` (a few table probes per run): nothing per event.
    assert [sum(not u.endswith("index.db") for u in run) for run in engines] == [1, 1]
    assert len(engines[0]) == len(engines[1]) <= 6, engines
    assert stored[1] - stored[0] == 45
