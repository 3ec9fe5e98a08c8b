"""Run one real Dagster job in a child process, with or without an `ML_ASSETS_FAULT`.

Each run is a real Dagster run (`execute_in_process` of the project's job against the sqlite
instance under DAGSTER_HOME, the real DuckDB file, the real MLflow sqlite store), in its own
process, so SIGKILL at a fault point kills exactly that run. The process is forked from a
multiprocessing fork server that imported this module (so Dagster, MLflow, XGBoost and the
definitions) once: a fresh interpreter spends ~20 s importing them on this machine, which a
dozen killed runs and reruns would pay a dozen times. The fork server opens no store before it
forks, so no connection or MLflow client is shared between runs.

Before its job, the child does what `make run` does first (`prepare_headless`): dead runs of
earlier (killed) children are failed and their `duckdb_warehouse` slots freed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import signal
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

import ml_assets.definitions  # noqa: F401  (the fork server's one import of everything)
from ml_assets import instance_health
from ml_assets.core.faults import ENV as FAULT_ENV
from ml_assets.core.spec import load_specs
from ml_assets.core.tags import RANGE_END, RANGE_START
from ml_assets.definitions import shared_resources
from ml_assets.factory import build_dataset_defs
from ml_assets.replay import QUIET
from ml_assets.resources.mlflow_tracking import MlflowTracking


@dataclass(frozen=True)
class Job:
    """A job of the project's definitions, as a single run: a partition range, config, tags."""

    name: str
    start: str | None = None  # partition range (a single-run backfill), ISO days
    end: str | None = None
    ops_config: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    selection: tuple[str, ...] = ()  # asset keys ("flights/predictions"); empty: the whole job
    tracking_uri: str = ""  # MLflow store for this run ("" = the default sqlite store)
    # RLIMIT_FSIZE for the run (bytes; 0 = none): a write past it fails (EFBIG), as a write to a
    # full disk fails (ENOSPC); set once the instance is open, so only the run's writes meet it.
    file_size_limit: int = 0


@dataclass(frozen=True)
class Outcome:
    exitcode: int | None  # -9: killed by SIGKILL
    success: bool | None  # None when the child died before reporting
    run_id: str | None
    errors: list[str]  # "<step>: <error and its causes>" per failed step
    log: str

    @property
    def killed(self) -> bool:
        return self.exitcode == -signal.SIGKILL


def _child(home: str, dagster_home: str, job: Job, fault: str | None, env: dict, out: str) -> None:
    os.environ.update(
        {"ML_ASSETS_HOME": home, "DAGSTER_HOME": dagster_home, "ML_ASSETS_SPECS": f"{home}/specs"}
    )
    os.environ.pop(FAULT_ENV, None)
    if fault:
        os.environ[FAULT_ENV] = fault
    os.environ.update(env)
    os.chdir(home)  # relative paths a library may create (a sqlite `file:` URI's folder) stay here
    with open(f"{out}.log", "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    specs = load_specs(Path(home) / "specs")
    resources = dict(shared_resources().resources)
    if job.tracking_uri:
        resources["mlflow"] = MlflowTracking(tracking_uri=job.tracking_uri)
    defs = dg.Definitions.merge(
        *(build_dataset_defs(s) for s in specs), dg.Definitions(resources=resources)
    )
    tags = dict(job.tags)
    if job.start:
        tags |= {RANGE_START: job.start, RANGE_END: job.end or job.start}
    config = {**QUIET, **({"ops": job.ops_config} if job.ops_config else {})}
    selection = [dg.AssetKey.from_user_string(s) for s in job.selection] or None
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        instance_health.prepare_headless(instance, timeout_seconds=60)
        if job.file_size_limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not kill
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (job.file_size_limit, hard))
        result = defs.resolve_job_def(job.name).execute_in_process(
            instance=instance,
            run_config=config,
            tags=tags,
            asset_selection=selection,
            raise_on_error=False,
        )
        errors = [
            f"{e.step_key}: {e.event_specific_data.error.to_string()}"
            for e in result.all_events
            if e.event_type == dg.DagsterEventType.STEP_FAILURE
        ]
    Path(out).write_text(
        json.dumps({"success": result.success, "run_id": result.run_id, "errors": errors})
    )


def _context() -> multiprocessing.context.ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def run_job(
    home: Path,
    dagster_home: Path,
    job: Job,
    *,
    fault: str | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 300,
) -> Outcome:
    """Run `job` in a forked child; wait for it to finish or die."""
    out = home / f"outcome-{os.urandom(4).hex()}.json"
    proc = _context().Process(
        target=_child, args=(str(home), str(dagster_home), job, fault, env or {}, str(out))
    )
    proc.start()
    proc.join(timeout_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise AssertionError(f"{job.name} still running after {timeout_s}s")
    log = Path(f"{out}.log").read_text() if Path(f"{out}.log").exists() else ""
    if not out.exists():
        return Outcome(proc.exitcode, None, None, [], log)
    summary = json.loads(out.read_text())
    return Outcome(proc.exitcode, summary["success"], summary["run_id"], summary["errors"], log)
