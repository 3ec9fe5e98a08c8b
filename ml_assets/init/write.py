"""Write a proposed dataset folder (its `defs.yaml`, features declared) only once it validates.

The spec is staged in a private temp folder and checked there the way definitions load it
(`load_spec`, and the generated feature query bound against an empty table shaped like
`validated`). Only then is it moved in, with an atomic rename, so a loader watching the defs
folder never sees half a file, and a failure leaves every file the user had as it was.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import tempfile
from pathlib import Path

import duckdb

from ml_assets import settings
from ml_assets.core.spec import (
    DatasetSpec,
    SpecError,
    is_spec_file,
    load_spec,
    read_spec_mapping,
    write_spec,
)
from ml_assets.core.sql import ident
from ml_assets.init.infer import InitError
from ml_assets.init.profile import FileProfile
from ml_assets.layers.features.query import (
    FeatureSqlError,
    composed_query,
    load_feature_files,
    validated_relation,
)
from ml_assets.layers.validate.contract import expected_validated_schema

SPEC_FILE = "defs.yaml"


def source_section(profile: FileProfile) -> dict[str, object]:
    """The file as the raw layer finds it: relative to the project root when inside it (so the
    spec works from any checkout), else absolute; glob characters in the name escaped."""
    root = settings.project_root()
    try:
        where = str(profile.path.relative_to(root))
    except ValueError:
        where = str(profile.path)
    section: dict[str, object] = {"files": [glob.escape(where)], "format": profile.format}
    if profile.format == "csv":
        csv = profile.source.csv
        section["csv"] = {
            "delimiter": csv.delimiter,
            "header": csv.header,
            "null_strings": list(csv.null_strings),
        }
    return section


def _check_features_bind(spec: DatasetSpec) -> None:
    """Bind the composed feature query against an empty `validated`-shaped table: a wrong column
    or function fails here, naming the file, instead of in the first run."""
    files = load_feature_files(spec)
    columns = ", ".join(f"{ident(c)} {t}" for c, t in expected_validated_schema(spec))
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE _validated ({columns})")
        start = spec.partitions.start
        composed_query(conn, spec, files, validated_relation("_validated"), start, start)


def validate(path: Path) -> DatasetSpec:
    """Load a written spec as the definitions will; raise `InitError` naming the problem."""
    try:
        spec = load_spec(path)
        if spec.features is not None:
            _check_features_bind(spec)
    except (SpecError, FeatureSqlError) as exc:
        raise InitError(f"the written spec does not load: {exc}") from None
    return spec


def name_taken(out: Path, name: str, target: Path) -> Path | None:
    """Another dataset folder under `out` already declaring this dataset name."""
    for path in sorted(out.glob(f"*/{SPEC_FILE}")):
        if path.parent.resolve() == target.resolve():
            continue
        try:
            if is_spec_file(path) and read_spec_mapping(path).get("name") == name:
                return path
        except SpecError:
            continue  # not ours to judge; `make check-defs` reports it
    return None


def _header(profile: FileProfile) -> str:
    return (
        f"# Written by `ml-assets init` from {profile.path.name} on {dt.date.today()}: "
        "review it (the command printed what to check).\n"
        "# A dataset is a Dagster Component: its attributes are the DatasetSpec "
        "(ml_assets/core/spec.py).\n"
    )


def write_dataset(target: Path, spec: dict, profile: FileProfile, *, force: bool) -> DatasetSpec:
    """Stage, validate, then install `defs.yaml` into `target`.

    Refuses an existing folder unless `force`; even then only `defs.yaml` is replaced, nothing
    else in the folder is touched.
    """
    if target.exists() and not force:
        raise InitError(f"{target} already exists: pass --force to replace its {SPEC_FILE}")
    taken = name_taken(target.parent, spec["name"], target)
    if taken is not None:
        raise InitError(f"dataset name '{spec['name']}' is already used by {taken}")
    with tempfile.TemporaryDirectory(prefix=f"ml-assets-init-{spec['name']}-") as tmp:
        staged = Path(tmp)
        spec_path = write_spec(staged / SPEC_FILE, spec)
        spec_path.write_text(_header(profile) + spec_path.read_text())
        validate(spec_path)
        target.mkdir(parents=True, exist_ok=True)
        part = target / f".{SPEC_FILE}.part"
        shutil.copyfile(spec_path, part)
        os.replace(part, target / SPEC_FILE)
    return validate(target / SPEC_FILE)
