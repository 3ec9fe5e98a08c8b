"""`ml-assets`: the project's command line. `ml-assets init` turns a CSV or Parquet file into a
dataset folder (a defs.yaml, features declared) that `make run` and `dagster dev` load.

Output goes to stdout through `_say` (library code does not print); errors go to stderr with a
non-zero exit, and nothing is written when any step fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ml_assets import settings
from ml_assets.init.infer import InitError
from ml_assets.init.profile import ColumnProfile, ProfileError, contract_type
from ml_assets.init.propose import Options, Proposal, propose
from ml_assets.init.write import SPEC_FILE, write_dataset


def _say(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml-assets", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser(
        "init",
        help="write a dataset spec (defs.yaml) from a CSV or Parquet file",
        description="Profile a CSV or Parquet file with DuckDB and write a dataset folder that "
        "loads: source, contract, partitions, label, features, model and monitoring sections.",
    )
    init.add_argument("path", type=Path, help="the CSV or Parquet file")
    init.add_argument("--name", required=True, help="dataset name (asset group, DuckDB schema)")
    init.add_argument("--label", required=True, help="the label column")
    init.add_argument(
        "--positive",
        help="the positive class (a value, e.g. yes) or a threshold on a numeric label "
        "(e.g. '>15'): makes the label binary",
    )
    init.add_argument("--time", help="the event-time column (default: inferred)")
    init.add_argument("--key", help="comma-separated unique key columns (default: inferred)")
    init.add_argument(
        "--label-delay-days",
        type=int,
        default=0,
        help="days after an event before its label is known (default 0)",
    )
    init.add_argument(
        "--out",
        type=Path,
        help=f"folder of dataset folders; writes OUT/NAME/ (default: {settings.defs_dir()})",
    )
    init.add_argument(
        "--force",
        action="store_true",
        help=f"replace {SPEC_FILE} of an existing dataset folder",
    )
    return parser


def describe_column(col: ColumnProfile, spec_columns: dict) -> str:
    """One line per contract column: type, NULLs, and its range or values."""
    facts = [f"{col.null_rate:.1%} NULL" if col.nulls else "no NULLs"]
    if col.numeric_range is not None:
        lo, hi = col.numeric_range
        facts.append(f"{lo:.6g} .. {hi:.6g}")
    elif col.type in {"DATE", "TIMESTAMP", "TIMESTAMPTZ"}:
        facts.append(f"{col.minimum} .. {col.maximum}")
    if col.values and col.type in {"VARCHAR", "BOOLEAN"}:
        facts.append(f"{col.distinct} values: " + ", ".join(v for v, _ in col.values[:6]))
    else:
        facts.append(f"{col.distinct:,} distinct")
    if col.type != contract_type(col.sniffed):
        facts.append(f"read as {col.sniffed}, but not every value casts")
    contract = spec_columns[col.name]
    rules = [f"{k}={v}" for k, v in contract.items() if k in ("nullable", "min", "max_null_rate")]
    return f"    {col.name:<20} {col.type:<12} {'; '.join(facts)}" + (
        f"  [{', '.join(rules)}]" if rules else ""
    )


def report(proposal: Proposal, target: Path) -> None:
    profile, spec = proposal.profile, proposal.spec
    source = spec["source"]
    _say(
        f"ml-assets init: {spec['name']} from {profile.path} ({profile.format}, "
        f"{profile.rows:,} rows, {len(profile.columns)} contract columns)"
    )
    _say(f"  source: {source['files'][0]} (relative paths are under {settings.project_root()})")
    _say("  columns:")
    for col in profile.columns.values():
        _say(describe_column(col, spec["contract"]["columns"]))
    for line in proposal.notes.inferred:
        _say(f"  {line}")
    _say(f"wrote {target / SPEC_FILE} (loaded and checked)")
    _say("review:")
    for line in proposal.notes.review:
        _say(f"  - {line}")
    _say("next: make check-defs, then make run (or make dev to open the UI)")


def init(args: argparse.Namespace) -> int:
    options = Options(
        path=args.path,
        name=args.name,
        label=args.label,
        positive=args.positive,
        time=args.time,
        key=[k.strip() for k in args.key.split(",") if k.strip()] if args.key else None,
        label_delay_days=args.label_delay_days,
    )
    proposal = propose(options)
    target = (args.out or settings.defs_dir()).resolve() / options.name
    write_dataset(target, proposal.spec, proposal.profile, force=args.force)
    report(proposal, target)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return init(args)
    except (InitError, ProfileError) as exc:
        sys.stderr.write(f"ml-assets {args.command}: error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
