"""Our graph, measured as users run it: a real Dagster run of `<ds>__daily_layers`.

Each measurement gets its own project home (ML_ASSETS_HOME: warehouse, cache, reports) and its own
Dagster instance (sqlite storage under a temp folder, configured by the repo's dagster.yaml, as
`make run` uses). What a measurement starts from is decided by the caller: an empty home, or a
copy of a prepared one (`snapshot` / `restore`).

One thing every home shares: the extracted copy of the zipped bundled CSV (`data/cache/`),
hard-linked in. The bare scripts read that extracted CSV too, so neither side pays for unzipping.

The plain path (`plain_window`) calls the same layer functions the assets call, in the same
order, on a connection from the same resource, without Dagster: the difference is orchestration.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import yaml

from benchmarks.harness import timer
from ml_assets.core.spec import DatasetSpec
from ml_assets.definitions import build_defs
from ml_assets.layers.features.logic import write_features
from ml_assets.layers.features.query import load_feature_files
from ml_assets.layers.features.reference import load_reference_tables
from ml_assets.layers.ingest.files import SourceFile, resolve_source
from ml_assets.layers.ingest.raw import write_raw
from ml_assets.layers.validate.logic import write_validated
from ml_assets.resources.warehouse import Warehouse, warehouse_resource

REPO = Path(__file__).resolve().parent.parent
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# Console logging off: a run launched by the daemon or the UI does not print every event either.
# Events still go to the instance's sqlite event log, which is the cost a real run pays.
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def daily_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}__daily_layers"


@contextmanager
def project_home(home: Path) -> Iterator[Path]:
    """Point ml_assets' settings at `home` (they are read at call time) for the block."""
    before = os.environ.get("ML_ASSETS_HOME")
    os.environ["ML_ASSETS_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("ML_ASSETS_HOME", None)
        else:
            os.environ["ML_ASSETS_HOME"] = before


def warehouse_file(home: Path) -> Path:
    return home / "data" / "warehouse" / "warehouse.duckdb"


@dataclass(frozen=True)
class Sources:
    """Readable paths of a spec's source and lookups, resolved once under a shared home."""

    home: Path
    source: list[SourceFile]
    lookups: dict[str, list[SourceFile]]


def resolve_sources(spec: DatasetSpec, shared_home: Path) -> Sources:
    """Extract (once) and locate the spec's files; new homes hard-link the extracted cache."""
    shared_home.mkdir(parents=True, exist_ok=True)
    with project_home(shared_home):
        source = resolve_source(spec.source)
        lookups = {name: resolve_source(s) for name, s in spec.lookups.items()}
    return Sources(shared_home, source, lookups)


def new_home(path: Path, sources: Sources) -> Path:
    """An empty project home whose source cache is the shared, already extracted one."""
    (path / "data").mkdir(parents=True, exist_ok=True)
    cache = sources.home / "data" / "cache"
    if cache.exists() and not (path / "data" / "cache").exists():
        shutil.copytree(cache, path / "data" / "cache", copy_function=_link_or_copy)
    return path


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy instead
        shutil.copy2(src, dst)


def instance_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "dagster.yaml").read_text()) or {}


def open_instance(path: Path | None) -> dg.DagsterInstance:
    """A persistent sqlite-backed instance in `path` (reopened if it exists), like `make run`'s.

    `None` gives an in-memory instance: the same run without the event log's disk writes, which
    tells how much of the graph's cost is Dagster's storage rather than its scheduling.
    """
    if path is None:
        return dg.DagsterInstance.ephemeral()
    path.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.local_temp(str(path), overrides=instance_config())


def open_postgres_instance(path: Path, env: dict[str, str]) -> dg.DagsterInstance:
    """An instance configured by the repo's `dagster.postgres.yaml` (README, Scale-out), as a
    team's would be, its `DAGSTER_PG_*` variables from `env` (this process is the measurement's
    own, so setting them here affects nothing else)."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.postgres.yaml", path / "dagster.yaml")
    os.environ.update(env)
    return dg.DagsterInstance.from_config(str(path))


@dataclass
class GraphRun:
    seconds: float
    success: bool
    run_id: str
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def check_seconds(self) -> float:
        """Time inside asset-check steps (their names are not asset steps of the layers)."""
        return sum(s for k, s in self.step_seconds.items() if k.startswith("check:"))


def _step_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    # A step that materializes something is an asset step; one that only evaluates checks is a
    # check step.
    assets = {
        ev.step_key
        for ev in result.all_events
        if ev.event_type_value == "ASSET_MATERIALIZATION" and ev.step_key
    }
    out = {}
    for ev in result.all_events:
        if ev.event_type_value == "STEP_SUCCESS" and ev.step_key:
            kind = "asset" if ev.step_key in assets else "check"
            out[f"{kind}:{ev.step_key}"] = ev.event_specific_data.duration_ms / 1000
    return out


def run_window(
    spec: DatasetSpec,
    home: Path,
    instance: dg.DagsterInstance,
    start: dt.date,
    end: dt.date,
    resources: dict[str, Any] | None = None,
    assets: Sequence[dg.AssetKey] | None = None,
) -> GraphRun:
    """One single-run backfill of [start, end] through raw -> validated -> features, with checks
    (or only `assets` of the job, with theirs).

    Timed: `execute_in_process` only (definitions are built before the clock starts, as a code
    server builds them once).
    """
    with project_home(home):
        defs = build_defs([spec], warehouse_path=str(warehouse_file(home)))
        job = defs.resolve_job_def(daily_job_name(spec))
        with timer() as t:
            result = job.execute_in_process(
                instance=instance,
                run_config=QUIET,
                tags={RANGE_START: start.isoformat(), RANGE_END: end.isoformat()},
                raise_on_error=False,
                resources=resources,
                asset_selection=list(assets) if assets else None,
            )
    if not result.success:
        failures = [
            f"{ev.step_key}: {ev.event_specific_data.error.message.strip()[:300]}"
            for ev in result.all_events
            if ev.event_type_value == "STEP_FAILURE"
        ]
        raise RuntimeError(f"graph run {start}..{end} failed: {failures}")
    return GraphRun(t[0], result.success, result.run_id, _step_seconds(result))


def limited_warehouse(home: Path, memory_limit: str | None) -> dict[str, Any] | None:
    """A warehouse resource with a DuckDB `memory_limit`, to override the default one in a run."""
    if not memory_limit:
        return None
    return {
        "warehouse": Warehouse(
            database=str(warehouse_file(home)), connection_config={"memory_limit": memory_limit}
        )
    }


def plain_window(spec: DatasetSpec, home: Path, start: dt.date, end: dt.date) -> float:
    """The same layer functions the assets call, in order, on the same resource: no Dagster."""
    files = load_feature_files(spec) if spec.features else []
    with project_home(home):
        resource = warehouse_resource(str(warehouse_file(home)))
        with timer() as t, resource.get_connection() as conn:
            now = dt.datetime.now(dt.UTC)
            write_raw(conn, spec, start, end, run_id="plain", ingested_at=now)
            write_validated(conn, spec, start, end, run_id="plain", validated_at=now)
            if spec.features:
                if spec.lookups:
                    load_reference_tables(conn, spec)
                write_features(conn, spec, files, start, end, run_id="plain", featurized_at=now)
    return t[0]


def table_counts(db: Path, spec: DatasetSpec) -> dict[str, int]:
    """Rows per layer table in a warehouse file (missing tables count as absent)."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as conn:
        present = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [spec.name],
            ).fetchall()
        }
        for table in ("raw", "validated", "quarantine", "features"):
            if table in present:
                ((n,),) = conn.execute(f'SELECT count(*) FROM "{spec.name}".{table}').fetchall()
                out[table] = n
    return out


def snapshot(home: Path, instance_dir: Path, target: Path) -> None:
    """Copy a closed home and its instance, so each repeat starts from the same state."""
    shutil.copytree(home, target / "home", copy_function=_copy_or_link)
    shutil.copytree(instance_dir, target / "dagster")


def _copy_or_link(src: str, dst: str) -> None:
    # The extracted source cache is read-only for every run: link it; copy everything else.
    if f"{os.sep}cache{os.sep}" in src:
        _link_or_copy(src, dst)
    else:
        shutil.copy2(src, dst)
