"""DatasetSpec: a dataset described as YAML, from which its whole asset graph is generated.

A spec is the only thing a user writes to bring a new dataset in, so every mistake in it must be
reported with the file, the field and what is wrong, before any asset runs.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Identifier = Annotated[str, Field(pattern=IDENT.pattern)]

# Contract types are DuckDB types; the validation SQL casts raw text to them with TRY_CAST.
ColumnType = Literal[
    "BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "TIMESTAMPTZ"
]
NUMERIC_TYPES = {"INTEGER", "BIGINT", "DOUBLE"}


class SpecError(ValueError):
    """A dataset spec is invalid; the message names the file, the field and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    delimiter: str = ","
    header: bool = True
    null_strings: list[str] = Field(default_factory=lambda: ["", "NA"])


class SourceSpec(_Strict):
    """Where a dataset's rows come from: files inside an installed package, or paths/globs."""

    package: str | None = Field(
        None, description="Installed package holding the files (read, never imported)."
    )
    files: list[str] = Field(
        ..., min_length=1, description="Paths or globs (relative to the package or the repo root)."
    )
    format: Literal["csv", "parquet"] = "csv"
    csv: CsvOptions = Field(default_factory=CsvOptions)


class EventTimeSpec(_Strict):
    """The event time of a row: a column or a DuckDB expression over typed contract columns."""

    column: Identifier | None = None
    expression: str | None = None
    timezone: str = Field(
        "UTC", description="Zone that offset-carrying timestamps are converted to."
    )

    @model_validator(mode="after")
    def _one_of(self) -> EventTimeSpec:
        if (self.column is None) == (self.expression is None):
            raise ValueError("give exactly one of 'column' or 'expression'")
        return self

    @property
    def sql(self) -> str:
        return f'"{self.column}"' if self.column else f"({self.expression})"


class LabelSpec(_Strict):
    kind: Literal["binary", "regression"]
    column: Identifier | None = None
    expression: str | None = None
    delay_days: int = Field(0, ge=0, description="Days after the event before the label is known.")
    missing: Literal["exclude"] = Field(
        "exclude",
        description="Rows whose label is NULL stay in validated but are excluded (and counted) in training.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> LabelSpec:
        if (self.column is None) == (self.expression is None):
            raise ValueError("give exactly one of 'column' or 'expression'")
        return self

    @property
    def sql(self) -> str:
        return f'"{self.column}"' if self.column else f"({self.expression})"


class ColumnContract(_Strict):
    type: ColumnType
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[str | int | float | bool] | None = None
    max_null_rate: float | None = Field(
        None, ge=0, le=1, description="Warn above this share of NULLs."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ColumnContract:
        if (self.min is not None or self.max is not None) and self.type not in NUMERIC_TYPES:
            raise ValueError(f"min/max need a numeric type, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class ContractSpec(_Strict):
    columns: dict[Identifier, ColumnContract] = Field(..., min_length=1)
    unique_key: list[Identifier] = Field(..., min_length=1)


class PartitionSpec(_Strict):
    start: dt.date
    end: dt.date | None = Field(
        None, description="Last partition (inclusive); open-ended if omitted."
    )


class QualitySpec(_Strict):
    max_quarantine_rate: float = Field(0.05, ge=0, le=1)
    row_count_min_ratio: float = Field(
        0.5, gt=0, description="Warn below this ratio to the trailing median."
    )
    row_count_max_ratio: float = Field(
        1.5, gt=0, description="Warn above this ratio to the trailing median."
    )
    trailing_days: int = Field(14, ge=1)
    freshness_max_lag_days: int = Field(1, ge=0)
    future_tolerance_minutes: int = Field(
        5, ge=0, description="Event times later than ingestion time plus this are quarantined."
    )


class DatasetSpec(_Strict):
    name: Identifier
    description: str = ""
    intended_use: str = ""
    source: SourceSpec
    lookups: dict[Identifier, SourceSpec] = Field(
        default_factory=dict, description="Reference tables (e.g. weather) the features join to."
    )
    partitions: PartitionSpec
    event_time: EventTimeSpec
    label: LabelSpec
    contract: ContractSpec
    slices: list[Identifier] = Field(default_factory=list)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    # Sections owned by later layers (features, training, evaluation, monitoring) are kept as
    # free-form mappings here and validated by the layer that reads them.
    features: dict = Field(default_factory=dict)
    training: dict = Field(default_factory=dict)
    evaluation: dict = Field(default_factory=dict)
    monitoring: dict = Field(default_factory=dict)

    path: Path | None = Field(None, exclude=True, description="The YAML file this spec came from.")

    @model_validator(mode="after")
    def _references(self) -> DatasetSpec:
        cols = self.contract.columns
        for key in self.contract.unique_key:
            if key not in cols:
                raise ValueError(f"contract.unique_key: '{key}' is not a contract column")
        for s in self.slices:
            if s not in cols:
                raise ValueError(f"slices: '{s}' is not a contract column")
        for name, ref in (
            ("event_time.column", self.event_time.column),
            ("label.column", self.label.column),
        ):
            if ref is not None and ref not in cols:
                raise ValueError(f"{name}: '{ref}' is not a contract column")
        if self.partitions.end is not None and self.partitions.end < self.partitions.start:
            raise ValueError("partitions.end is before partitions.start")
        return self

    @property
    def columns(self) -> list[str]:
        return list(self.contract.columns)


def load_spec(path: Path) -> DatasetSpec:
    """Parse and validate one spec file; every failure names the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return DatasetSpec.model_validate({**raw, "path": path})
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc']) or '<root>'}': {err['msg']}"
            for err in exc.errors()
        )
        raise SpecError(f"{path}: {problems}") from None


def load_specs(directory: Path) -> list[DatasetSpec]:
    """Load every `*.yaml` spec in a directory; dataset names must be unique."""
    specs = [load_spec(p) for p in sorted(directory.glob("*.yaml"))]
    seen: dict[str, Path | None] = {}
    for spec in specs:
        if spec.name in seen:
            raise SpecError(
                f"{spec.path}: dataset name '{spec.name}' is already used by {seen[spec.name]}"
            )
        seen[spec.name] = spec.path
    return specs
