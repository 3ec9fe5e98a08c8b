"""The landing sensor: a CSV/Parquet file dropped in `data/landing/<dataset>/` gets ingested.

The sensor only reads the dropped file (on a private in-memory DuckDB), never the warehouse, so it
cannot contend for the warehouse lock. A file that cannot be ingested at all (unreadable, missing
columns, no row that fits a partition) is moved to `_rejected/` beside a `.reason.txt` naming the
problem. A good file becomes one run over exactly the days its placeable rows cover (up to the
newest partition that exists; later days wait for their own daily run, which reads every file
registered for them); rows that fit no partition are recorded by that run in
`<ds>.rejected_rows` with their reason, never dropped. The checksum is the run key, so the same
bytes are ingested once however often or under whatever name they are dropped.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from ml_assets import settings
from ml_assets.core.spec import DatasetSpec
from ml_assets.core.tags import LANDING_FILE_TAG, RANGE_END, RANGE_START, SOURCE_CHECKSUM_TAG
from ml_assets.layers.ingest.files import SourceError, inspect_file, last_partition_day
from ml_assets.layers.ingest.raw import landing_file

LANDING_SUFFIXES = {".csv", ".parquet", ".pq"}


def reject(path: Path, reason: str) -> Path:
    """Move a file out of the landing folder, with the reason beside it."""
    target_dir = path.parent / "_rejected"
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    shutil.move(path, target)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
    return target


def landing_requests(spec: DatasetSpec, folder: Path, raw_op: str) -> Iterator[dg.RunRequest | str]:
    """Run requests for the good files in `folder`; a message for each file it rejected, or
    left for a later tick because its first placeable day has no partition yet."""
    newest = last_partition_day(spec)
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if path.suffix.lower() not in LANDING_SUFFIXES:
            continue
        try:
            file = landing_file(path)
            profile = inspect_file(file, spec)
        except SourceError as exc:
            reject(path, str(exc))
            yield f"rejected {path.name}: {exc}"
            continue
        first, last = profile.placed_first, profile.placed_last
        if newest is None or first > newest:
            yield f"waiting {path.name}: its first day {first} has no partition yet ({newest})"
            continue
        yield dg.RunRequest(
            run_key=f"{spec.name}:{file.checksum}",
            run_config={"ops": {raw_op: {"config": {"landing_files": [str(path)]}}}},
            tags={
                RANGE_START: first.isoformat(),
                RANGE_END: min(last, newest).isoformat(),
                LANDING_FILE_TAG: path.name,
                SOURCE_CHECKSUM_TAG: file.checksum,
            },
        )


def build_landing_sensor(spec: DatasetSpec, job: dg.JobDefinition | str) -> dg.SensorDefinition:
    raw_op = spec.names.op("raw")

    @dg.sensor(
        name=spec.names.sensor("landing"),
        job_name=job if isinstance(job, str) else job.name,
        minimum_interval_seconds=30,
        description=f"Ingests CSV/Parquet files dropped into data/landing/{spec.name}/.",
    )
    def landing(context: dg.SensorEvaluationContext) -> Iterator[dg.RunRequest]:
        folder = settings.landing_dir(spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        for item in landing_requests(spec, folder, raw_op):
            if isinstance(item, str):
                context.log.warning(item)
            else:
                yield item

    return landing
