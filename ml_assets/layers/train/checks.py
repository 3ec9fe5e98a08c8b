"""Checks on `training_set`: the time split is sound before any model is trained on it."""

import itertools

import dagster as dg

from ml_assets.core.spec import DatasetSpec
from ml_assets.layers.train.dataset import SPLITS, SplitIntegrity, split_integrity
from ml_assets.resources.warehouse import Warehouse, warehouse_pool


def split_problems(splits: list[SplitIntegrity], task: str) -> list[str]:
    """Everything wrong with a time split, as readable sentences (empty when sound)."""
    found = {s.split: s for s in splits}
    problems = [f"split '{name}' has no rows" for name in SPLITS if name not in found]
    ordered = [found[name] for name in SPLITS if name in found]
    for before, after in itertools.pairwise(ordered):
        if before.last_day >= after.first_day:
            problems.append(
                f"'{before.split}' ends {before.last_day}, not before '{after.split}' "
                f"starts {after.first_day}"
            )
    for s in ordered:
        if s.keys != s.rows:
            problems.append(f"'{s.split}' has {s.rows - s.keys} duplicate keys")
        if s.null_labels:
            problems.append(f"'{s.split}' has {s.null_labels} NULL labels")
        if task == "binary" and (s.label_values != 2 or s.label_min != 0 or s.label_max != 1):
            problems.append(
                f"'{s.split}' needs both labels 0 and 1; has {s.label_values} distinct "
                f"value(s) in [{s.label_min}, {s.label_max}]"
            )
    if splits and splits[0].shared_keys:
        problems.append(f"{splits[0].shared_keys} keys appear in more than one split")
    return problems


def build_train_checks(spec: DatasetSpec) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=spec.names.key("training_set"),
        name="split_integrity",
        blocking=True,
        pool=warehouse_pool(),
        description=(
            "Train, validation and test are non-empty, in time order without overlap, share no "
            "key, and have no NULL labels (binary: both classes in every split)."
        ),
    )
    def split_integrity_check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.get_connection() as conn:
            splits = split_integrity(conn, spec)
        problems = split_problems(splits, spec.label.kind)
        return dg.AssetCheckResult(
            passed=not problems,
            metadata={
                "problems": dg.MetadataValue.json(problems),
                "splits": dg.MetadataValue.json(
                    {
                        s.split: {
                            "rows": s.rows,
                            "first_day": s.first_day.isoformat(),
                            "last_day": s.last_day.isoformat(),
                            "label_values": s.label_values,
                        }
                        for s in splits
                    }
                ),
            },
        )

    return [split_integrity_check]
