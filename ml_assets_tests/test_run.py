"""End to end: the main job (`make run`) on the whole bundled year, in a temp home."""

import re
import shutil

import duckdb
import pytest

from ml_assets import run, settings
from ml_assets_tests.conftest import REPO


def test_main_job_materializes_the_whole_year(
    home, monkeypatch, capsys: pytest.CaptureFixture
) -> None:
    dagster_home = home / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    assert run.main() == 0
    out = capsys.readouterr().out
    assert re.search(r"flights/raw +336,776 rows over 365 partition", out)
    assert "row_conservation     PASS" in out
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        raw, days = conn.execute(
            "SELECT count(*), count(DISTINCT _partition_date) FROM flights.raw"
        ).fetchone()
        valid, label_null = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE _label IS NULL) FROM flights.validated"
        ).fetchone()
        (quarantined,) = conn.execute("SELECT count(*) FROM flights.quarantine").fetchone()
    assert (raw, days) == (336_776, 365)
    assert valid + quarantined == raw
    # Cancelled/diverted flights are kept, with no label.
    assert label_null == 9_430
