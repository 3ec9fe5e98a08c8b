"""Assemble the whole proposal for one file: the spec mapping (features declared) and the notes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml_assets.core.spec import IDENT
from ml_assets.init.infer import (
    InitError,
    Notes,
    choose_key,
    choose_time,
    contract_section,
    entity_key_columns,
    infer_label,
    model_sections,
    plan_features,
    plan_training,
    propose_slices,
)
from ml_assets.init.profile import FileProfile, connect, daily_profile, profile_file
from ml_assets.init.write import source_section


@dataclass(frozen=True)
class Options:
    """What the user said; everything else is inferred from the file."""

    path: Path
    name: str
    label: str
    positive: str | None = None
    time: str | None = None
    key: list[str] | None = None
    label_delay_days: int = 0


@dataclass(frozen=True)
class Proposal:
    profile: FileProfile
    spec: dict
    notes: Notes


def propose(options: Options) -> Proposal:
    """Profile the file and decide every section of its spec (nothing is written here)."""
    if not IDENT.match(options.name):
        raise InitError(f"--name {options.name!r}: a dataset name is an identifier (a-z, 0-9, _)")
    notes = Notes()
    with connect() as conn:
        profile = profile_file(conn, options.path)
        time = choose_time(profile, options.time, notes)
        daily = daily_profile(conn, profile, time.column, time.timezone)
        label = infer_label(conn, profile, options.label, options.positive, notes)
        key = choose_key(conn, profile, options.key, label.column, time.column.name, notes)
    notes.inferred.insert(
        0,
        f"partitions: {daily.first} .. {daily.last} ({daily.span_days} days, "
        f"{len(daily.days)} with rows, median {daily.median_rows:.0f} rows/day)",
    )
    notes.review.insert(
        0,
        f"label.delay_days = {options.label_delay_days}: the days after an event before its "
        "label is known; set it (--label-delay-days) before adding features over past labels",
    )
    notes.review.append(
        f"partitions.end = {daily.last}: remove it to keep ingesting new days (landing files "
        "rows outside the partitions go to <name>.rejected_rows with their reason)"
    )
    if profile.skipped:
        notes.review.append(
            "columns left out of the contract: "
            + "; ".join(f"{c}: {why}" for c, why in profile.skipped.items())
        )
    exclude = {label.column, *key, time.column.name}
    training = plan_training(daily)
    slices = []
    if training is not None:
        slices = propose_slices(profile, daily, exclude, training["split"]["test_days"], notes)
    entity_keys = entity_key_columns(profile, key, time.column.name)
    if entity_keys:
        notes.inferred.append(
            f"features: {', '.join(entity_keys)} (part of the key {', '.join(key)}: the entity "
            "each row is about, whose level usually predicts its label) as categorical"
        )
    features = plan_features(
        profile,
        daily,
        exclude - set(entity_keys),
        time.column,
        notes,
        entities=slices,
        label_delay_days=options.label_delay_days,
    )
    spec: dict = {
        "name": options.name,
        "description": (
            f"{options.name}: {profile.rows:,} rows of {profile.path.name}, {daily.first} .. "
            f"{daily.last}."
        ),
        "intended_use": "Not described yet: say what the scores are for, and what not.",
        "source": source_section(profile),
        "partitions": {"start": daily.first, "end": daily.last},
        "event_time": {"column": time.column.name, "timezone": time.timezone},
        "label": label.section(options.label_delay_days),
        "contract": contract_section(profile, daily, key, notes),
    }
    if slices:
        spec["slices"] = slices
    spec["features"] = {"lookback_days": features.lookback_days, "columns": features.columns}
    if training is None:
        notes.inferred.append(
            f"model layers: off, {daily.span_days} days are too few for train, validation and "
            "test windows; the data layers and features are written"
        )
    else:
        spec |= model_sections(label.kind, daily, training, features.expected_drift, notes)
    notes.review.append("intended_use: describe what the model is for (it heads the model card)")
    return Proposal(profile, spec, notes)
