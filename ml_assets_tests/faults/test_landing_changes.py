"""A landing file that changes or disappears while the raw layer ingests it.

The raw layer's own function (`write_raw`, what the raw asset runs) on a real DuckDB file, with
the file system moving under it at the moment that matters: right after a checksum was read, or
during the copy into the archive. The outcome is either one version ingested consistently (the
checksum recorded is the checksum of the rows ingested and of the archived copy) or a clear error
naming the file with the warehouse as it was; a rerun with a stable file converges.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.ingest import files as files_module
from ml_assets.layers.ingest import raw as raw_module
from ml_assets.layers.ingest.files import SourceError, sha256
from ml_assets.layers.ingest.raw import write_raw
from ml_assets_tests.conftest import orders_rows, write_csv

D1, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 3)
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
VERSION_A = orders_rows(D3, 4, start_id=800)
VERSION_B = orders_rows(D3, 6, start_id=900)
REAL_COPY = shutil.copyfile
TABLES = ("raw", "source_files", "source_file_days", "rejected_rows")


def ingest(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, landing: list[Path]) -> None:
    write_raw(conn, spec, D1, D3, run_id="test", ingested_at=NOW, landing=landing)


def state(conn: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    return {
        t: conn.execute(
            f"SELECT count(*), coalesce(bit_xor(hash(r)), 0) FROM orders.{t} r"
        ).fetchone()
        for t in TABLES
    }


def landed(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(checksum, archived copy, order ids ingested from it) per landing file."""
    rows = conn.execute(
        """SELECT f.checksum, f.archived_path, list(r.order_id ORDER BY r.order_id::INT)
           FROM orders.source_files f JOIN orders.raw r ON r._source_checksum = f.checksum
           WHERE f.kind = 'landing' GROUP BY ALL"""
    ).fetchall()
    return [(c, Path(a), ids) for c, a, ids in rows]


def ids(lines: list[str]) -> list[str]:
    return [line.split(",")[0] for line in lines]


@pytest.fixture
def drop(home: Path) -> Path:
    return write_csv(home / "drops" / "late.csv", VERSION_A)


def test_a_file_rewritten_right_after_its_checksum_was_read_lands_as_one_version(
    orders_spec, warehouse, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sha256
    rewritten = []

    def checksum_then_rewrite(path: Path) -> str:
        digest = real(path)
        ours = Path(path) == drop or Path(path).parent == settings.archive_dir("orders")
        if ours and not rewritten:  # the producer rewrites the drop just after it was hashed
            write_csv(drop, VERSION_B)
            rewritten.append(path)
        return digest

    monkeypatch.setattr(files_module, "sha256", checksum_then_rewrite)
    monkeypatch.setattr(raw_module, "sha256", checksum_then_rewrite, raising=False)
    ingest(warehouse, orders_spec, [drop])
    assert rewritten, "the rewrite never happened"
    ((checksum, archived, ingested),) = landed(warehouse)
    # One version throughout: the rows ingested, the archived copy and the checksum agree.
    assert sha256(archived) == checksum
    assert ingested in (ids(VERSION_A), ids(VERSION_B))
    assert ingested == ids(archived.read_text().splitlines()[1:])


def copy_then(action: str, drop: Path):
    real = REAL_COPY

    def copy(src, dst, *args, **kwargs):
        out = real(src, dst, *args, **kwargs)
        if Path(src) == drop:
            if action == "changes":  # the producer is still appending while it is read
                with drop.open("a") as fh:
                    fh.write(orders_rows(D3, 1, start_id=990)[0] + "\n")
            else:
                drop.unlink()
        return out

    return copy


@pytest.mark.parametrize("action", ["changes", "disappears", "is gone before"])
def test_a_file_that_changes_or_disappears_while_read_is_refused_naming_it(
    action: str, orders_spec, warehouse, drop: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(warehouse, orders_spec, [])  # the bundled days, before the drop
    before = state(warehouse)
    if action == "is gone before":
        drop.unlink()
    else:
        monkeypatch.setattr(raw_module.shutil, "copyfile", copy_then(action, drop))
    word = {"changes": "changed", "disappears": "disappeared"}.get(action, "disappeared|not found")
    with pytest.raises(SourceError, match=word) as err:
        ingest(warehouse, orders_spec, [drop])
    assert str(drop) in str(err.value)
    assert state(warehouse) == before
    archive = settings.archive_dir("orders")
    assert not archive.exists() or list(archive.iterdir()) == []  # no copy, no .part left

    # The producer drops the file again, complete; the rerun ingests it once.
    monkeypatch.setattr(shutil, "copyfile", REAL_COPY)
    write_csv(drop, VERSION_A)
    ingest(warehouse, orders_spec, [drop])
    ((checksum, archived, ingested),) = landed(warehouse)
    assert checksum == sha256(drop) == sha256(archived) and ingested == ids(VERSION_A)
    total = warehouse.execute("SELECT count(*) FROM orders.raw").fetchone()[0]
    assert total == before["raw"][0] + len(VERSION_A)
