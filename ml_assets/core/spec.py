"""DatasetSpec: a dataset described as YAML, from which its whole asset graph is generated.

A spec is the only thing a user writes to bring a new dataset in, so every mistake in it must be
reported with the file, the field and what is wrong, before any asset runs. Every section, the
model-side ones included, is typed here and validated once, when definitions load; the layers
read typed fields and never re-parse the YAML.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from ml_assets.core.metrics import PRIMARY, EvaluationError, check_metric
from ml_assets.core.names import DatasetNames

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Identifier = Annotated[str, Field(pattern=IDENT.pattern)]

# Contract types are DuckDB types; the validation SQL casts raw text to them with TRY_CAST.
ColumnType = Literal[
    "BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "TIMESTAMPTZ"
]
NUMERIC_TYPES = {"INTEGER", "BIGINT", "DOUBLE"}
# The monitoring checks whose failure may request a retrain (`monitoring.retrain_on`).
RETRAIN_CHECKS = (
    "drift_report:drift_share",
    "drift_report:severe_drift",
    "performance:degradation",
)


class SpecError(ValueError):
    """A dataset spec is invalid; the message names the file, the field and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    delimiter: str = ","
    header: bool = True
    null_strings: list[str] = Field(default_factory=lambda: ["", "NA"])


class KafkaSource(_Strict):
    """A Kafka topic of JSON messages (one object per message), polled by the dataset's stream
    sensor in bounded batches into the warehouse's stream ledger, exactly once."""

    bootstrap_servers: str = Field(..., min_length=1, description="`bootstrap.servers`.")
    topic: str = Field(..., min_length=1)
    group: str = Field(
        ..., min_length=1, description="`group.id`; its commits are a convenience, never read."
    )
    format: Literal["json"] = Field(
        "json", description="Each message's value is one JSON object (JSON lines, one per message)."
    )
    key: Identifier | None = Field(
        None,
        description="Contract column the message key fills when the JSON object lacks it.",
    )
    event_time_field: str | None = Field(
        None,
        description=(
            "JSON field holding the event time (ISO 8601; naive values are in "
            "event_time.timezone). Default: event_time.column."
        ),
    )
    max_messages: int = Field(50_000, ge=1, description="At most this many messages per tick.")
    max_seconds: float = Field(
        5.0, gt=0, le=50, description="A tick polls for at most about this long."
    )
    interval_seconds: int = Field(5, ge=1, description="The sensor's minimum interval.")


class SourceSpec(_Strict):
    """Where a dataset's rows come from: files inside an installed package, paths/globs, or (for
    the dataset itself, not a lookup) a Kafka topic."""

    package: str | None = Field(
        None, description="Installed package holding the files (read, never imported)."
    )
    files: list[str] = Field(
        default_factory=list,
        description="Paths or globs (relative to the package or the repo root).",
    )
    format: Literal["csv", "parquet"] = "csv"
    csv: CsvOptions = Field(default_factory=CsvOptions)
    kafka: KafkaSource | None = None

    @model_validator(mode="after")
    def _files_or_kafka(self) -> SourceSpec:
        if self.kafka is None and not self.files:
            raise ValueError("files: give at least one path or glob, or a 'kafka' topic")
        if self.kafka is not None and (self.files or self.package):
            raise ValueError("kafka: a source is either files or a Kafka topic, not both")
        return self


class _ColumnOrExpression(_Strict):
    """A value read from one contract column, or computed by a DuckDB expression over them."""

    column: Identifier | None = None
    expression: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _ColumnOrExpression:
        if (self.column is None) == (self.expression is None):
            raise ValueError("give exactly one of 'column' or 'expression'")
        return self

    @property
    def sql(self) -> str:
        return f'"{self.column}"' if self.column else f"({self.expression})"


class EventTimeSpec(_ColumnOrExpression):
    """The event time of a row: a column or a DuckDB expression over typed contract columns."""

    timezone: str = Field(
        "UTC", description="Zone that offset-carrying timestamps are converted to."
    )


class LabelSpec(_ColumnOrExpression):
    kind: Literal["binary", "regression"]
    delay_days: int = Field(0, ge=0, description="Days after the event before the label is known.")
    missing: Literal["exclude"] = Field(
        "exclude",
        description="Rows whose label is NULL stay in validated but are excluded (and counted) in training.",
    )


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


# Parts of the event time a calendar feature may take (DuckDB date-part functions).
CalendarPart = Literal[
    "year",
    "quarter",
    "month",
    "monthname",
    "week",
    "day",
    "dayofyear",
    "dayofweek",
    "isodow",
    "dayname",
    "is_weekend",
    "hour",
    "minute",
]


class WindowSpec(_Strict):
    """An aggregate of the entity's past rows, known before the event (see features/declared.py).

    Kept to sums and counts over a time window per entity key, so the online store can hold
    the same values as per-entity running aggregates.
    """

    agg: Literal["count", "sum", "mean"]
    of: str = Field(
        "label",
        description="`label` (known `label.delay_days` after its event), a contract column, or "
        "`*` with `count` for the number of past rows.",
    )
    by: list[Identifier] = Field(..., min_length=1, description="Entity key column(s).")
    days: int | None = Field(None, ge=1, description="Past rows of the last N days.")
    hours: int | None = Field(None, ge=1, description="Past rows of the last N hours.")
    known_at: str | None = Field(
        None,
        description="SQL over the row's columns and `_event_time`: when a past row's `of` value "
        "becomes known (e.g. a departure delay at the actual departure). The window then holds "
        "the values that became known in its last N days or hours; NULL means never known.",
    )

    @model_validator(mode="after")
    def _one_length(self) -> WindowSpec:
        if (self.days is None) == (self.hours is None):
            raise ValueError("give exactly one of 'days' or 'hours'")
        if self.of == "*" and self.agg != "count":
            raise ValueError("of: '*' only counts rows (agg: count)")
        if self.known_at is not None and self.of in ("label", "*"):
            raise ValueError(
                "known_at: only for a column (a label is known `label.delay_days` after its "
                "event, and a row is there at its event)"
            )
        return self

    @property
    def length(self) -> dt.timedelta:
        return dt.timedelta(days=self.days or 0, hours=self.hours or 0)


class LookupJoin(_Strict):
    """How a row finds its row of a reference table (see features/lookups.py).

    Declared rather than written as a join so serving can find the row in sorted arrays instead
    of running the join per request, and both paths come from one definition.
    """

    table: Identifier | None = Field(
        None, description="The `lookups` table read (default: this join's name)."
    )
    # Not `on`: YAML reads a bare `on` as true.
    key: dict[Identifier, str] = Field(
        ...,
        min_length=1,
        description="Contract column -> SQL over the table's columns that must equal it, "
        "compared as text (cast in the SQL when the types differ); a NULL on either side "
        "matches nothing.",
    )
    time: str | None = Field(
        None,
        description="SQL over the table's columns: when its row became true. The join is then "
        "as of the event: the latest row at or before `_event_time`.",
    )
    max_age_hours: int | None = Field(
        None, ge=1, description="With `time`: a row older than this is no match (unknown)."
    )
    where: str | None = Field(None, description="SQL over the table's columns: rows to keep.")
    first_by: str | None = Field(
        None,
        description="SQL over the table's columns: of rows with the same key (and time), the "
        "first in this order is the one used.",
    )

    @model_validator(mode="after")
    def _age_needs_time(self) -> LookupJoin:
        if self.max_age_hours is not None and self.time is None:
            raise ValueError("max_age_hours: only with 'time' (an as-of join)")
        return self


class LookupFeature(_Strict):
    """A value of the row a declared lookup join finds."""

    join: Identifier = Field(..., description="A `features.lookups` entry.")
    value: str = Field(..., description="SQL over the table's columns.")
    age: Literal["year", "month", "day"] | None = Field(
        None,
        description="The value is a date or timestamp; the feature is the number of these "
        "boundaries from it to the event (`date_diff`), e.g. a plane's age in years.",
    )


# How a declared feature is computed: a FeatureColumn has at most one.
DERIVATIONS = ("column", "calendar", "window", "lookup")


class FeatureColumn(_Strict):
    kind: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    max_null_rate: float = Field(0.05, ge=0, le=1)
    # How the value is computed; none of them means one of `features.sql` returns it.
    column: Identifier | None = Field(None, description="The event's own contract column.")
    calendar: CalendarPart | None = Field(None, description="A part of the event time.")
    window: WindowSpec | None = Field(None, description="An aggregate of the entity's past rows.")
    lookup: LookupFeature | None = Field(None, description="A value of a reference table's row.")

    @model_validator(mode="after")
    def _one_derivation(self) -> FeatureColumn:
        given = [k for k in DERIVATIONS if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of {list(DERIVATIONS)} (got {given})")
        if self.lookup is not None and self.lookup.age is not None and self.kind != "numeric":
            raise ValueError("lookup.age: an age is numeric (kind: numeric)")
        return self

    @property
    def declared(self) -> bool:
        """True when the layer generates this feature's SQL from the declaration."""
        return any(getattr(self, k) is not None for k in DERIVATIONS)


class FeaturesSection(_Strict):
    sql: list[str] = Field(
        default_factory=list,
        description="SQL files, relative to the spec's folder, for the features a declaration "
        "cannot say (lookups, custom logic).",
    )
    columns: dict[str, FeatureColumn] = Field(..., min_length=1)
    lookups: dict[Identifier, LookupJoin] = Field(
        default_factory=dict, description="Joins to reference tables that `lookup` features read."
    )
    lookback_days: int = Field(28, ge=0, description="How far back any feature window reaches.")

    @model_validator(mode="after")
    def _sources(self) -> FeaturesSection:
        from_sql = [c for c, f in self.columns.items() if not f.declared]
        if from_sql and not self.sql:
            raise ValueError(
                f"columns {from_sql} have none of {list(DERIVATIONS)} and no 'sql' file "
                "is listed to return them"
            )
        lookback = dt.timedelta(days=self.lookback_days)
        too_long = [
            c
            for c, f in self.columns.items()
            if f.window is not None
            and (f.window.length > lookback or (f.window.known_at and f.window.length >= lookback))
        ]
        unjoined = sorted(
            {f.lookup.join for f in self.columns.values() if f.lookup} - set(self.lookups)
        )
        if unjoined:
            raise ValueError(f"lookup.join {unjoined}: not in features.lookups")
        if too_long:
            raise ValueError(
                f"columns {too_long}: a window may reach back at most lookback_days "
                f"({self.lookback_days}; less with known_at, which needs room for the delay), "
                "or a day's features would depend on how it was built"
            )
        return self

    @property
    def declared(self) -> dict[str, FeatureColumn]:
        return {c: f for c, f in self.columns.items() if f.declared}

    def sql_paths(self, spec: DatasetSpec) -> list[Path]:
        base = spec.path.parent if spec.path else Path.cwd()
        return [base / p for p in self.sql]

    @property
    def numeric(self) -> list[str]:
        return [c for c, f in self.columns.items() if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [c for c, f in self.columns.items() if f.kind == "categorical"]


class SplitSection(_Strict):
    validation_days: int = Field(14, ge=1)
    test_days: int = Field(14, ge=1)


class SearchSection(_Strict):
    method: Literal["random", "halving", "optuna"] = Field(
        "random",
        description="`random`: seeded draws from a fixed grid; `halving`: the same draws on "
        "growing slices of the train split, keeping the better half each round; `optuna`: TPE "
        "sampling over the grid's ranges, XGBoost trials pruned on their boosting rounds.",
    )
    budget: int = Field(
        8,
        ge=1,
        description="Parameter sets tried per model family (optuna: trials, pruned ones included).",
    )


class DaskSection(_Strict):
    address: str | None = Field(
        None,
        description="The Dask scheduler to train on (`tcp://host:8786`). Unset: the "
        "`ML_ASSETS_DASK_ADDRESS` environment variable, read when training runs, so one spec "
        "serves every environment.",
    )


class TrainingSection(_Strict):
    window_days: int = Field(
        120, ge=3, description="Most recent days of labelled features to train on."
    )
    split: SplitSection = Field(default_factory=SplitSection)
    seed: int = 42
    search: SearchSection = Field(default_factory=SearchSection)
    models: list[Literal["xgboost", "linear"]] = Field(
        default_factory=lambda: ["xgboost", "linear"]
    )
    registered_model_name: str | None = Field(None, description="Defaults to `<dataset>_model`.")
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = Field(
        "auto",
        description="Binary only: recalibrate the chosen model's scores on the validation split "
        "(isotonic regression, or sigmoid/Platt on the log-odds; `auto` tries both) and keep the "
        "calibrator only when its cross-fitted validation log loss beats the raw scores'. Stored "
        "in the logged model, so every consumer of the version gets the calibrated scores.",
    )
    engine: Literal["local", "dask"] = Field(
        "local",
        description="Where XGBoost fits run: `local` in the step's process; `dask` with "
        "`xgboost.dask` on the Dask cluster at `dask.address`. The registered model, its "
        "lineage and its reproducibility (same rows and seed, same metrics) are the same.",
    )
    dask: DaskSection = Field(default_factory=DaskSection)

    @model_validator(mode="after")
    def _engine_fits_search(self) -> TrainingSection:
        # Optuna prunes an XGBoost trial from a callback holding the study, which would have to
        # travel to every Dask worker.
        if self.engine == "dask" and self.search.method == "optuna":
            raise ValueError("engine dask supports search.method random or halving, not optuna")
        return self


ThresholdRule = Literal["fixed", "max_f1", "target_precision", "target_recall"]


class ThresholdPolicy(_Strict):
    """How a binary model's decision threshold is set: chosen on the validation split at training
    time (never on the test holdout) and stored with the model version."""

    policy: ThresholdRule = Field(
        "max_f1",
        description="`max_f1`: the validation threshold of best F1; `target_precision`: the "
        "lowest threshold whose validation precision reaches `value` (the most recall at that "
        "precision); `target_recall`: the highest threshold whose validation recall reaches "
        "`value` (the most precision at that recall); `fixed`: `value` itself.",
    )
    value: float | None = Field(
        None, gt=0, lt=1, description="The threshold (fixed) or the target (target_*)."
    )

    @model_validator(mode="after")
    def _value_fits_policy(self) -> ThresholdPolicy:
        if self.policy == "max_f1" and self.value is not None:
            raise ValueError("policy max_f1 takes no 'value'")
        if self.policy != "max_f1" and self.value is None:
            raise ValueError(f"policy {self.policy} needs a 'value' in (0, 1)")
        return self


def _fixed_if_number(raw: object) -> object:
    # `threshold: 0.5`, the form before threshold policies, is a fixed threshold.
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return {"policy": "fixed", "value": raw}
    return raw


class ShadowGateSection(_Strict):
    """The online gate: a candidate that passed every offline gate is promoted only after it
    decided as the champion on enough real requests (shadow scoring, `make serve`)."""

    min_rows: int = Field(
        500,
        ge=1,
        description="Online rows the candidate must have scored in shadow (or as the canary) "
        "beside the champion before it is judged; until then it stays `challenger`, pending.",
    )
    min_agreement: float = Field(
        0.95,
        ge=0,
        le=1,
        description="Blocking: share of those rows where the candidate's decision equals the "
        "champion's. Below it the candidate is rejected, however good offline.",
    )


class EvaluationSection(_Strict):
    metric: str = Field(
        "roc_auc",
        description="Primary metric (see core/metrics.py); defaults to roc_auc (binary), rmse "
        "(regression).",
    )
    floor: float = Field(
        ..., description="Blocking: the candidate's primary metric must reach this."
    )
    non_inferiority_tolerance: float = Field(0.01, ge=0)
    max_slice_gap: float | None = Field(
        None,
        ge=0,
        description="Blocking: how much worse than overall a slice (of >= min_slice_rows rows) may "
        "be once its bootstrap noise is allowed for. Absolute for bounded scores (roc_auc, pr_auc, "
        "f1, ...: 0.15 = 0.80 overall vs 0.65); relative for error metrics (rmse, mae, log_loss, "
        "brier: 0.2 = 20% worse than overall) and for r2, whose slices are judged by RMSE. "
        "Defaults to 0.15 absolute, 0.25 relative (evaluate/gates.py says why).",
    )
    min_slice_rows: int = Field(200, ge=1)
    shadow: ShadowGateSection | None = Field(
        None,
        description="Require shadow agreement on online traffic before a promotion (off by "
        "default: a first champion, and `make run`'s replay, which serves no traffic, decide on "
        "the offline gates alone). A candidate replacing a champion becomes `challenger` "
        "pending; the `shadow_gate` sensor decides it once the request log holds `min_rows`.",
    )
    max_calibration_error: float = Field(0.05, ge=0)
    leakage_ceiling: float = Field(0.995, description="A primary metric this good is implausible.")
    threshold: Annotated[
        ThresholdPolicy,
        BeforeValidator(_fixed_if_number, json_schema_input_type=float | ThresholdPolicy),
    ] = Field(
        default_factory=ThresholdPolicy,
        description="Binary decision threshold behind f1/precision/recall and the predictions' "
        "decision column: a policy such as {policy: max_f1} or {policy: target_precision, value: "
        "0.6}, applied to the validation split when the model is trained; a number is a fixed "
        "threshold. Default: max_f1.",
    )


class ScoringSection(_Strict):
    explain_top_k: int = Field(
        5,
        ge=0,
        le=50,
        description="Features kept per prediction in `<ds>.explanations`: the K largest "
        "|contributions| (TreeSHAP for XGBoost, coefficient x standardized input for the linear "
        "pipeline) with their values, written with the predictions. 0 writes none.",
    )
    xgboost_contributions: Literal["tree_shap", "saabas"] = Field(
        "saabas",
        description="`saabas` (default): XGBoost's path attributions (`pred_contribs` with "
        "`approx_contribs`), about 21.7k rows/s on one core for the flights champion (300 trees "
        "of depth 6), adding up to the margin but crediting features split near the root more "
        "than their Shapley share; `tree_shap`: exact Shapley values, about 850 rows/s, which "
        "would make `make run`'s scoring of ~256k rows minutes slower. The method is stored on "
        "every explanation row.",
    )


class MonitoringSection(_Strict):
    drift_share_warn: float = Field(0.3, ge=0, le=1)
    drift_share_severe: float = Field(0.6, ge=0, le=1)
    drift_p_value: float = Field(0.01, gt=0, lt=1)
    drift_quantile: float = Field(
        0.99,
        gt=0.5,
        lt=1,
        description="A column drifts on a day when its statistic is beyond this quantile of the "
        "same statistic over the reference window's own days (see monitor/calibration.py).",
    )
    expected_drift: list[str] = Field(
        default_factory=list,
        description="Features that drift by construction (the month, calendar parts): reported, "
        "never counted in the drift share.",
    )
    performance_tolerance: float = Field(
        0.05, ge=0, description="Margin beyond the expected worst trailing window (see below)."
    )
    degradation_quantile: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description="The champion's expected worst trailing window is this quantile of a day-"
        "block bootstrap of its holdout: about the false-alarm rate of `degradation` per window.",
    )
    performance_history_days: int = Field(
        28,
        ge=1,
        description="Judged days of monitoring history needed before the production gap (how far "
        "trailing windows have fallen below their champion's expected worst in this dataset) "
        "widens the degradation margin beyond `performance_tolerance`.",
    )
    performance_window_days: int = Field(7, ge=1, description="Trailing days pooled per verdict.")
    performance_min_rows: int = Field(
        2000, ge=1, description="Fewer labelled rows in the trailing window: too noisy to judge."
    )
    champion_max_age_days: int = Field(30, ge=1)
    retrain_on: list[str] = Field(
        default_factory=lambda: ["drift_report:severe_drift", "performance:degradation"],
        description="Failed checks (`<asset>:<check>`) that request a retrain.",
    )
    # Measured in data days, not wall-clock hours: a replay or backfill moves through months in
    # minutes, and must retrain exactly as often as the same days would live.
    retrain_cooldown_days: int = Field(7, ge=0)
    evidently_sample_rows: int = Field(20_000, ge=100)
    evidently_report: Literal["always", "on_drift", "never"] = Field(
        "on_drift",
        description="When the drift asset renders Evidently's HTML report for its window: "
        "`on_drift` when a day's drift share reaches `drift_share_warn` or a day's scores "
        "drift, as the checks judge them (the report is for a person to look at why; rendering "
        "it costs seconds a window whatever the rows, mostly in plotting), `always`, or `never`. "
        "The drift numbers, checks and the pooled window are computed on every row either way.",
    )


DEFAULT_REPLAY_MONTHS = 12


class ReplaySection(_Strict):
    """How the headless main job (`make run`) replays a dataset's history. No asset reads it, so
    changing it changes no code version."""

    months: int | None = Field(
        DEFAULT_REPLAY_MONTHS,
        ge=1,
        description="Replay only the newest N months: the first model is trained on the "
        "`training.window_days` before them and the earlier months are not monitored, so a long "
        "history (16 years of days, say) still runs in minutes. Default: the newest "
        f"{DEFAULT_REPLAY_MONTHS} (a year of monthly cycles); `null`: the whole history. "
        "`python -m ml_assets.run --replay-months N` (`make run REPLAY_MONTHS=N`) overrides it.",
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
    # The model-side sections. `features` turns on the features layer; any of `training`,
    # `evaluation`, `monitoring` turns on the model layers, which then need all three: `training`
    # and `monitoring` are completed from their defaults, `evaluation` needs at least `floor`.
    features: FeaturesSection | None = None
    training: TrainingSection | None = None
    evaluation: EvaluationSection | None = None
    monitoring: MonitoringSection | None = None
    scoring: ScoringSection = Field(default_factory=ScoringSection)
    replay: ReplaySection = Field(default_factory=ReplaySection)

    # Set by the loader, never written in YAML (and so not in the component's schema).
    path: SkipJsonSchema[Path | None] = Field(
        None, exclude=True, description="The YAML file this spec came from."
    )

    @model_validator(mode="before")
    @classmethod
    def _complete_model_sections(cls, raw: object) -> object:
        """Fill the model sections a partial configuration left out, from their defaults.

        `monitoring: {}` (or no `monitoring`) next to `training` means "the defaults", never
        "no model layers": a missing section must not silently remove layers.
        """
        if not isinstance(raw, dict):
            return raw
        model_sections = ("training", "evaluation", "monitoring")
        if not any(raw.get(k) is not None for k in model_sections):
            return raw
        out = dict(raw)
        for key in ("training", "monitoring"):
            if out.get(key) is None:
                out[key] = {}
        evaluation = out.get("evaluation")
        label = out.get("label")
        if isinstance(evaluation, dict) and "metric" not in evaluation and isinstance(label, dict):
            out["evaluation"] = {**evaluation, "metric": PRIMARY.get(label.get("kind"), "roc_auc")}
        return out

    @model_validator(mode="after")
    def _model_layers(self) -> DatasetSpec:
        if self.training is None:
            return self
        if self.features is None:
            raise ValueError(
                "features: required when the model layers are configured (training, evaluation "
                "or monitoring): a model needs declared features"
            )
        if self.evaluation is None:
            raise ValueError(
                "evaluation: required when the model layers are configured; it needs at least "
                "'floor' (the blocking minimum of the primary metric)"
            )
        try:
            check_metric(self.evaluation.metric, self.label.kind)
        except EvaluationError as exc:
            raise ValueError(f"evaluation.metric: {exc}") from None
        undeclared = [c for c in self.monitoring.expected_drift if c not in self.features.columns]
        if undeclared:
            raise ValueError(f"monitoring.expected_drift: {undeclared} are not in features.columns")
        unknown = [c for c in self.monitoring.retrain_on if c not in RETRAIN_CHECKS]
        if unknown:
            raise ValueError(
                f"monitoring.retrain_on: unknown check(s) {unknown}; choose from {RETRAIN_CHECKS}"
            )
        return self

    @property
    def has_model_layers(self) -> bool:
        return self.training is not None

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
        for name, lookup in self.lookups.items():
            if lookup.kafka is not None:
                raise ValueError(f"lookups.{name}.kafka: a lookup is read from files")
        kafka = self.source.kafka
        if kafka is not None:
            if kafka.key is not None and kafka.key not in cols:
                raise ValueError(f"source.kafka.key: '{kafka.key}' is not a contract column")
            if kafka.event_time_field is None and self.event_time.column is None:
                raise ValueError(
                    "source.kafka.event_time_field: required when event_time is an expression "
                    "(the message field that holds the event time)"
                )
        if self.partitions.end is not None and self.partitions.end < self.partitions.start:
            raise ValueError("partitions.end is before partitions.start")
        for name, feature in (self.features.declared if self.features else {}).items():
            self._check_declared(f"features.columns.{name}", feature)
        for name, join in (self.features.lookups if self.features else {}).items():
            if (join.table or name) not in self.lookups:
                raise ValueError(
                    f"features.lookups.{name}: no table '{join.table or name}' in `lookups`"
                )
            for column in join.key:
                if column not in cols:
                    raise ValueError(
                        f"features.lookups.{name}.key: '{column}' is not a contract column"
                    )
        return self

    def _check_declared(self, field: str, feature: FeatureColumn) -> None:
        """A declared feature reads only contract columns, of a type its aggregate can use."""
        cols = self.contract.columns
        window = feature.window
        read = [feature.column] if feature.column else []
        if window is not None:
            read += window.by + ([window.of] if window.of not in ("label", "*") else [])
        for column in read:
            if column not in cols:
                raise ValueError(f"{field}: '{column}' is not a contract column")
        if window is None:
            return
        numeric = NUMERIC_TYPES | {"BOOLEAN"}
        if window.agg != "count" and window.of != "label" and cols[window.of].type not in numeric:
            raise ValueError(
                f"{field}.window: {window.agg} of '{window.of}' needs a numeric column, "
                f"not {cols[window.of].type}"
            )
        if window.of == "label" and window.length <= dt.timedelta(days=self.label.delay_days):
            raise ValueError(
                f"{field}.window: no label of the last {window.length} is known yet "
                f"(label.delay_days is {self.label.delay_days}): make the window longer"
            )

    @property
    def kafka_event_time_field(self) -> str | None:
        """The message field a Kafka source reads the event time from (None: not Kafka)."""
        kafka = self.source.kafka
        if kafka is None:
            return None
        return kafka.event_time_field or self.event_time.column

    @property
    def columns(self) -> list[str]:
        return list(self.contract.columns)

    @property
    def names(self) -> DatasetNames:
        """Asset keys, tables, ops and jobs of this dataset (see core/names.py)."""
        return DatasetNames(self.name)


# A spec file is a Dagster component file (`defs.yaml`) of this type, its attributes the spec.
COMPONENT_TYPE = "ml_assets.component.DatasetComponent"


def read_spec_mapping(path: Path) -> dict:
    """The spec mapping of a file, unvalidated: a dataset component's `attributes`, or, for
    tests and scripts, a bare spec mapping."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    if "type" in raw:
        if raw["type"] != COMPONENT_TYPE:
            raise SpecError(f"{path}: field 'type': {raw['type']!r} is not {COMPONENT_TYPE}")
        raw = raw.get("attributes")
        if not isinstance(raw, dict):
            raise SpecError(f"{path}: field 'attributes': expected the dataset spec mapping")
    return raw


def write_spec(path: Path, spec: dict) -> Path:
    """Write a spec mapping as a dataset component file (what `dg` and the loader read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"type": COMPONENT_TYPE, "attributes": spec}, sort_keys=False))
    return path


def load_spec(path: Path) -> DatasetSpec:
    """Parse and validate one spec file; every failure names the file and the field."""
    return parse_spec(read_spec_mapping(path), path)


def parse_spec(raw: dict, path: Path | None) -> DatasetSpec:
    """Validate a spec mapping (from a spec file or a component's attributes)."""
    try:
        return DatasetSpec.model_validate({**raw, "path": path})
    except ValidationError as exc:
        raise SpecError(f"{path}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Pydantic's errors as `field 'a.b': problem`; cross-field checks name their own field."""
    problems = []
    for err in exc.errors():
        field, message = ".".join(str(p) for p in err["loc"]), err["msg"]
        if not field:
            # Model-level validators raise "<field>: <problem>".
            message = message.removeprefix("Value error, ")
            field, _, message = message.partition(": ")
        problems.append(f"field '{field}': {message}")
    return "; ".join(problems)


def is_spec_file(path: Path) -> bool:
    """A dataset component file, or a bare spec (a mapping with a `name` and a `source`)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return path.name == "defs.yaml"  # let load_spec report it
    if not isinstance(raw, dict):
        return False
    return raw.get("type") == COMPONENT_TYPE or ("type" not in raw and "source" in raw)


def load_specs(directory: Path) -> list[DatasetSpec]:
    """Every dataset spec under a directory (e.g. `ml_assets/defs/*/defs.yaml`); names unique.

    YAML files of other component types are not datasets and are skipped.
    """
    specs = [load_spec(p) for p in sorted(directory.rglob("*.yaml")) if is_spec_file(p)]
    seen: dict[str, Path | None] = {}
    for spec in specs:
        if spec.name in seen:
            raise SpecError(
                f"{spec.path}: dataset name '{spec.name}' is already used by {seen[spec.name]}"
            )
        seen[spec.name] = spec.path
    return specs
