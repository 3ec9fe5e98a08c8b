"""From a file's profile to a dataset spec: every decision `ml-assets init` takes, with its reason.

Each function returns what it chose and the lines the user should read: what was inferred, and
what to review because the data alone cannot say it (when a label becomes known, whether a column
is recorded before the event, the zone of naive timestamps).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from ml_assets.core.spec import (
    EvaluationSection,
    FeatureColumn,
    MonitoringSection,
    TrainingSection,
)
from ml_assets.core.sql import ident, literal
from ml_assets.init.profile import (
    NUMERIC,
    TEMPORAL,
    ColumnProfile,
    DailyProfile,
    FileProfile,
    distinct_keys,
    label_stats,
)

# Columns more often NULL than this are not passthrough features.
MAX_FEATURE_NULL_RATE = 0.5
# A text column with more distinct values is an identifier or free text, not a category.
MAX_CATEGORIES = 100
# A column's observed values become its allowed set only when each value is seen this many
# times on average: in a tiny file, 15 values in 20 rows is a sample, not a domain.
MIN_ROWS_PER_ALLOWED_VALUE = 20
SLICE_MAX_VALUES = 10
MAX_SLICES = 3
# Key candidates: one column, else pairs among this many columns (pairs grow quadratically).
MAX_PAIR_COLUMNS = 12
KEY_TYPES = {"BIGINT", "VARCHAR", *TEMPORAL}
# Share of the data's days the first training window takes; `make run` replays the rest
# (scoring, drift and performance monitoring) after training on the first window.
TRAINING_SHARE = 0.7
# Floors a model with any real signal passes: ROC AUC 0.55 is barely better than chance; R² 0.1
# means the model explains a tenth of the test window's variance (predicting the mean scores 0,
# or below 0 when the mean moved).
# Trailing performance: the fewest labelled rows worth a verdict, the share of a typical window's
# rows required, and the longest window widened to reach them.
MIN_JUDGED_ROWS = 50
JUDGED_SHARE = 0.8
MAX_PERFORMANCE_WINDOW_DAYS = 28
FLOORS = {"binary": ("roc_auc", 0.55, 0.15), "regression": ("r2", 0.10, 0.20)}
TRUTHY = {"1", "true", "t", "yes", "y", "positive", "pos"}
_COMPARISON = re.compile(
    r"^\s*(>=|<=|<>|!=|>|<|=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_ID_NAME = re.compile(r"(^|_)(id|key|uuid)$|id$", re.IGNORECASE)


class InitError(ValueError):
    """`ml-assets init` cannot write a sound dataset from these inputs; the message says why."""


@dataclass
class Notes:
    """What a step inferred (printed as facts) and what the user should review."""

    inferred: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)


def _rate_limit(worst_daily: float, floor: float = 0.0) -> float:
    """A NULL-rate limit above the worst day seen: warn on a jump, not on an ordinary day."""
    return min(1.0, max(floor, math.ceil((worst_daily + 0.05) * 100) / 100))


def _fmt_values(values: list[str], limit: int = 8) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


# -- event time -------------------------------------------------------------------------------

_TIME_RANK = {"TIMESTAMPTZ": 0, "TIMESTAMP": 1, "DATE": 2}


@dataclass(frozen=True)
class TimeChoice:
    column: ColumnProfile
    timezone: str
    candidates: tuple[str, ...]


def choose_time(profile: FileProfile, requested: str | None, notes: Notes) -> TimeChoice:
    """The event-time column: given, else the most precise time column, complete ones first.

    A row without an event time fits no partition: the raw layer rejects it with the reason
    `no_event_time` into `<ds>.rejected_rows` (counted by `raw:source_rows_accounted`), so a
    column with NULLs works, and the user is told how many rows it will reject.
    """
    temporal = [c for c in profile.columns.values() if c.type in TEMPORAL]
    usable = [c for c in temporal if c.nulls == 0]
    if requested is not None:
        col = _column(profile, requested, "--time")
        if col.type not in TEMPORAL:
            raise InitError(
                f"--time {requested}: its values are {col.type} (sniffed {col.sniffed}), not "
                "dates or ISO timestamps; the contract casts ISO 8601 text only"
            )
    elif temporal:
        col = sorted(temporal, key=lambda c: (c.nulls > 0, _TIME_RANK[c.type], c.nulls))[0]
    else:
        raise InitError(
            "no event-time column (no column reads as DATE, TIMESTAMP or ISO 8601 timestamps "
            "with offsets); pass --time COLUMN"
        )
    if col.nulls:
        notes.review.append(
            f"event time {col.name}: {col.nulls} of {profile.rows} rows have no value; the raw "
            "layer rejects them (reason `no_event_time`) into rejected_rows, where "
            "raw:source_rows_accounted counts them"
        )
    candidates = tuple(c.name for c in usable)
    timezone = "UTC"
    if col.type == "TIMESTAMPTZ":
        offsets = ", ".join(col.offsets) or "?"
        how = f"TIMESTAMPTZ, offsets {offsets}, converted to {timezone}"
        if col.offset_share is not None and col.offset_share < 1:
            notes.review.append(
                f"event time {col.name}: {1 - col.offset_share:.1%} of values have no UTC "
                "offset; the contract quarantines them (`tz_missing`) as ambiguous"
            )
    elif col.type == "TIMESTAMP":
        how = "naive TIMESTAMP, read as UTC"
        notes.review.append(
            f"event time {col.name} has no time zone: `event_time.timezone: {timezone}` says "
            "its clock is UTC (ingestion compares it with the UTC clock to catch future rows); "
            "set the zone it was recorded in"
        )
    else:
        how = "DATE: every event at midnight, so no hour-of-day feature"
    others = [c for c in candidates if c != col.name]
    notes.inferred.append(
        f"event time: {col.name} ({how})"
        + (f"; other candidates: {', '.join(others)}" if others else "")
    )
    return TimeChoice(col, timezone, candidates)


def _column(profile: FileProfile, name: str, option: str) -> ColumnProfile:
    if name in profile.skipped:
        raise InitError(f"{option} {name}: {profile.skipped[name]}")
    if name not in profile.columns:
        raise InitError(f"{option} {name}: no such column; the file has {list(profile.columns)}")
    return profile.columns[name]


# -- key --------------------------------------------------------------------------------------


def _key_rank(col: ColumnProfile, time: str) -> tuple[int, int]:
    type_rank = {"BIGINT": 0, "VARCHAR": 1}.get(col.type, 2)
    return (0 if _ID_NAME.search(col.name) else 1, type_rank + (1 if col.name == time else 0))


def choose_key(
    conn: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    requested: list[str] | None,
    label: str,
    time: str,
    notes: Notes,
) -> list[str]:
    """The unique key: given (and checked), else a unique non-NULL column, else a unique pair.

    Pairs containing the event time come first: "one row per entity per day" is the usual shape
    of a table without an id.
    """
    if requested:
        for name in requested:
            _column(profile, name, "--key")
        rows, keyed, keys = distinct_keys(conn, requested)
        problems = []
        if keyed < rows:
            problems.append(f"{rows - keyed} rows have a NULL key column")
        if keys < keyed:
            problems.append(
                f"{keyed - keys} rows repeat a key: they will be quarantined as `duplicate_key`"
            )
        notes.inferred.append(f"key: {', '.join(requested)} (given)")
        if problems:
            notes.review.append(f"key {', '.join(requested)}: " + "; ".join(problems))
        return requested
    eligible = [
        c
        for c in profile.columns.values()
        if c.type in KEY_TYPES and c.nulls == 0 and c.name != label and c.distinct > 1
    ]
    singles = sorted(
        (c for c in eligible if c.distinct == profile.rows), key=lambda c: _key_rank(c, time)
    )
    if singles:
        chosen = [singles[0].name]
        candidates = [c.name for c in singles]
    else:
        pool = sorted(eligible, key=lambda c: (c.name != time, c.distinct))[:MAX_PAIR_COLUMNS]
        candidates = []
        for i, a in enumerate(pool):
            for b in pool[i + 1 :]:
                if a.distinct * b.distinct < profile.rows:
                    continue
                rows, keyed, keys = distinct_keys(conn, [a.name, b.name])
                if keys == rows:
                    candidates.append(f"{a.name}+{b.name}")
        if not candidates:
            raise InitError(
                "no unique key: no column, and no pair of columns, is unique and never NULL; "
                "pass --key COLUMNS (comma-separated), the columns that identify a row"
            )
        chosen = candidates[0].split("+")
    notes.inferred.append(
        f"key: {', '.join(chosen)} (unique, never NULL"
        + (f"; candidates: {', '.join(candidates)})" if len(candidates) > 1 else ")")
    )
    return chosen


# -- label ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelChoice:
    kind: str  # binary | regression
    column: str
    expression: str | None  # None: the column itself is the label
    positive_share: float | None
    labelled: int

    @property
    def sql(self) -> str:
        return self.expression or ident(self.column)

    def section(self, delay_days: int) -> dict[str, object]:
        found = {"expression": self.expression} if self.expression else {"column": self.column}
        return {"kind": self.kind, **found, "delay_days": delay_days}


def _typed_value(col: ColumnProfile, raw: str) -> object:
    """A `--positive` value as the column's type, so the label compares like with like."""
    try:
        if col.type == "BIGINT":
            return int(raw)
        if col.type == "DOUBLE":
            return float(raw)
    except ValueError:
        raise InitError(f"--positive {raw!r}: {col.name} is {col.type}; give a number") from None
    if col.type == "BOOLEAN":
        return raw.strip().lower() in TRUTHY
    return raw


def _positive_of_two(col: ColumnProfile, notes: Notes) -> str:
    values = [v for v, _ in col.values]
    truthy = [v for v in values if v.strip().lower() in TRUTHY]
    if len(truthy) == 1:
        return truthy[0]
    # The rarer value: the event a binary model is usually asked to find.
    positive = min(col.values, key=lambda vn: (vn[1], vn[0]))[0]
    notes.review.append(
        f"label {col.name}: positive class guessed as the rarer value {positive!r} of "
        f"{values}; pass --positive VALUE if it is the other one"
    )
    return positive


def infer_label(
    conn: duckdb.DuckDBPyConnection,
    profile: FileProfile,
    column: str,
    positive: str | None,
    notes: Notes,
) -> LabelChoice:
    """Binary when `--positive` is given or the column has two values; regression when it is
    numeric with more; otherwise refuse (a multi-class label has no task here).

    The label is written the way the spec expects it: the column itself when it already is
    0/1 or a boolean, else an expression that is TRUE for the positive class (`arr_delay > 15`,
    `"status" = 'churned'`) and NULL where the column is NULL (an unlabelled row).
    """
    col = _column(profile, column, "--label")
    if col.type in TEMPORAL:
        raise InitError(f"--label {column}: a {col.type} column is not a label")
    q = ident(column)
    kind, expression = "binary", None
    if positive is not None:
        comparison = _COMPARISON.match(positive)
        if comparison:
            if col.type not in NUMERIC:
                raise InitError(
                    f"--positive {positive!r}: a comparison needs a numeric label, {column} is "
                    f"{col.type}"
                )
            op, number = comparison.groups()
            expression = f"{q} {op} {number}"
        else:
            value = _typed_value(col, positive)
            observed = {v for v, _ in col.values}
            if col.values and col.type == "VARCHAR" and value not in observed:
                raise InitError(
                    f"--positive {positive!r} never occurs in {column}; values: {sorted(observed)}"
                )
            expression = f"{q} = {literal(value)}"
    elif col.distinct < 2:
        raise InitError(f"--label {column}: {col.distinct} distinct value(s), nothing to learn")
    elif col.distinct == 2:
        values = {v for v, _ in col.values}
        zero_one = col.type in NUMERIC and {float(v) for v in values} == {0.0, 1.0}
        if not (col.type == "BOOLEAN" or zero_one):
            expression = f"{q} = {literal(_typed_value(col, _positive_of_two(col, notes)))}"
    elif col.type in NUMERIC:
        kind = "regression"
    else:
        raise InitError(
            f"--label {column}: {col.distinct} distinct text values; multi-class labels are not "
            "supported: pass --positive VALUE for a one-vs-rest binary label"
        )
    stats = label_stats(conn, expression or q)
    unlabelled = stats.rows - stats.labelled
    missing = (
        f"; {unlabelled:,} rows without a label stay in validated, not trained on"
        if unlabelled
        else ""
    )
    if kind == "binary":
        if not stats.labelled or stats.mean in (0.0, 1.0):
            raise InitError(
                f"label {expression or q}: every labelled row is in one class ({stats.mean}); a binary "
                "label needs both"
            )
        notes.inferred.append(
            f"label: {expression or q} (binary, {stats.mean:.1%} positive of {stats.labelled:,} "
            f"labelled rows{missing})"
        )
    else:
        notes.inferred.append(
            f"label: {column} (regression: {stats.distinct:,} values, mean {stats.mean:.4g}, sd "
            f"{stats.sd:.4g}, range {stats.minimum:.4g} .. {stats.maximum:.4g}{missing})"
        )
    share = stats.mean if kind == "binary" else None
    return LabelChoice(kind, column, expression, share, stats.labelled)


# -- contract ---------------------------------------------------------------------------------


def allowed_values(col: ColumnProfile, rows: int) -> list[str] | None:
    """The observed values of a low-cardinality text column, when they look like its domain."""
    if col.type != "VARCHAR" or not col.low_cardinality:
        return None
    if rows < MIN_ROWS_PER_ALLOWED_VALUE * col.distinct:
        return None
    return sorted(v for v, _ in col.values)


def contract_section(
    profile: FileProfile, daily: DailyProfile, key: list[str], notes: Notes
) -> dict[str, object]:
    """Every column with its type; NOT NULL where no NULL was seen, else a NULL-rate warning
    above the worst day; `min: 0` for numbers never negative (a sign flip is an error, while an
    observed maximum is only the largest value so far); allowed values for small text domains."""
    columns: dict[str, dict[str, object]] = {}
    floors, domains = [], []
    for name, col in profile.columns.items():
        entry: dict[str, object] = {"type": col.type}
        if col.nulls == 0:
            entry["nullable"] = False
        else:
            entry["max_null_rate"] = _rate_limit(daily.worst_null_rate[name])
        bounds = col.numeric_range
        # Key columns are identifiers, not quantities: a sign says nothing about them.
        if bounds is not None and bounds[0] >= 0 and name not in key:
            entry["min"] = 0
            floors.append(name)
        allowed = allowed_values(col, profile.rows)
        if allowed is not None:
            entry["allowed"] = allowed
            domains.append(f"{name} ({_fmt_values(allowed, 5)})")
        columns[name] = entry
    if floors:
        notes.review.append(
            f"contract min: 0 on {', '.join(floors)} (never negative here); a negative value "
            "will be quarantined: delete the bound where negatives are legitimate"
        )
    if domains:
        notes.review.append(
            f"contract allowed values: {'; '.join(domains)}; a new value is quarantined"
        )
    return {"unique_key": key, "columns": columns}


# -- features ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeaturePlan:
    columns: dict[str, dict[str, object]]  # features.columns, every one a declaration
    lookback_days: int
    expected_drift: tuple[str, ...]
    dropped: dict[str, str]


# Label history per entity: how far back, and the fewest rows a category needs to be an entity.
LABEL_WINDOW_DAYS = 28


def plan_features(
    profile: FileProfile,
    daily: DailyProfile,
    exclude: set[str],
    time: ColumnProfile,
    notes: Notes,
    *,
    entities: list[str] = (),
    label_delay_days: int = 0,
) -> FeaturePlan:
    """Declared features: each remaining column passed through with its kind, calendar parts of
    the event time, and, once labels have a delay, each entity's label mean over 28 days.

    Passthrough and calendar features read only their own row, as validated, so none can see a
    label or anything after the event. Label windows read only labels already known (the
    features layer ends their frames `label.delay_days` before the event); with no delay set,
    `ml-assets init` cannot know when a label is known, so it proposes none.
    """
    default_nulls = FeatureColumn.model_fields["max_null_rate"].default
    columns: dict[str, dict[str, object]] = {}
    dropped: dict[str, str] = {}
    for name, col in profile.columns.items():
        if name in exclude:
            continue
        if col.type in TEMPORAL:
            dropped[name] = (
                "a time column: it may be recorded after the event; declare a feature from it "
                "(or write it in a features.sql) if it is known at the event time"
            )
        elif col.null_rate > MAX_FEATURE_NULL_RATE:
            dropped[name] = f"{col.null_rate:.0%} NULL (over {MAX_FEATURE_NULL_RATE:.0%})"
        elif col.distinct <= 1:
            dropped[name] = "constant"
        elif col.type == "VARCHAR" and col.distinct > MAX_CATEGORIES:
            dropped[name] = (
                f"{col.distinct:,} distinct values: an identifier or free text, not a category"
            )
        else:
            kind = "numeric" if col.type in NUMERIC else "categorical"
            entry: dict[str, object] = {"kind": kind, "column": name}
            limit = _rate_limit(daily.worst_null_rate[name], default_nulls)
            if limit > default_nulls:
                entry["max_null_rate"] = limit
            columns[name] = entry
    passthrough = list(columns)
    calendar: list[tuple[str, dict[str, object]]] = []
    if time.time_of_day:
        calendar.append(
            ("event_hour", {"kind": "numeric", "min": 0, "max": 23, "calendar": "hour"})
        )
    calendar += [
        ("event_weekday", {"kind": "categorical", "calendar": "dayname"}),
        ("event_month", {"kind": "numeric", "min": 1, "max": 12, "calendar": "month"}),
    ]
    expected_drift = []
    for name, entry in calendar:
        if name in columns:
            dropped[f"{name} (calendar)"] = f"the file has a column named {name}"
            continue
        columns[name] = entry
        if name != "event_hour":
            # Drift is judged per day, and every row of a day has the same weekday and month:
            # against a multi-day reference window these differ by construction (measured: the
            # weekday "drifted" on each of 18 monitored days of the churn test data).
            expected_drift.append(name)
    windows = []
    if label_delay_days > 0:
        for entity in entities:
            name = f"{entity}_label_mean_{LABEL_WINDOW_DAYS}d"
            if name in columns:
                continue
            columns[name] = {
                "kind": "numeric",
                # An entity with no labelled row in its window has no mean yet.
                "max_null_rate": 0.5,
                "window": {"agg": "mean", "of": "label", "by": [entity], "days": LABEL_WINDOW_DAYS},
            }
            windows.append(name)
    kinds = ", ".join(f"{c} ({columns[c]['kind']})" for c in passthrough) or "none"
    notes.inferred.append(f"features: passthrough {kinds}")
    notes.inferred.append(
        f"features: calendar parts of {time.name}: "
        + ", ".join(n for n, _ in calendar if "calendar" in columns.get(n, {}))
    )
    if windows:
        notes.inferred.append(
            f"features: label mean per entity over the last {LABEL_WINDOW_DAYS} days, known "
            f"{label_delay_days} day(s) after each event: {', '.join(windows)}"
        )
    for name, why in dropped.items():
        notes.inferred.append(f"not a feature: {name}: {why}")
    keys = [c for c in exclude if c in profile.columns and c != time.name]
    notes.review.append(
        f"not features: {', '.join(sorted(keys))} (label and key) and {time.name} (event time); "
        "declare a key column (`column: NAME`) if the entity itself predicts the label"
    )
    notes.review.append(
        "features pass columns through as they are: delete any that is only known after the "
        "event (it leaks the outcome; the leakage check cannot see that). Windows over past "
        "rows are declared with `window:` (see the flights spec, ml_assets/defs/flights)"
    )
    lookback = LABEL_WINDOW_DAYS if windows else 0
    return FeaturePlan(columns, lookback, tuple(expected_drift), dropped)


def entity_key_columns(profile: FileProfile, key: Sequence[str], time_column: str) -> list[str]:
    """The columns of a composite key that name an entity (a store, a site): text or boolean
    with at most MAX_CATEGORIES values. They are features; a single-column key (an id per row)
    and the key's time column are not."""
    if len(key) < 2:
        return []
    return [
        k
        for k in key
        if k != time_column
        and profile.columns[k].type in {"VARCHAR", "BOOLEAN"}
        and profile.columns[k].distinct <= MAX_CATEGORIES
    ]


# -- slices -----------------------------------------------------------------------------------


def propose_slices(
    profile: FileProfile,
    daily: DailyProfile,
    exclude: set[str],
    test_days: int,
    notes: Notes,
) -> list[str]:
    """Low-cardinality categorical columns whose every value (NULL included) can be expected to
    fill `min_slice_rows` rows in one test window, so the slice gap is measured, not noise."""
    min_rows = EvaluationSection.model_fields["min_slice_rows"].default
    window_rows = daily.median_rows * test_days
    chosen, rejected = [], []
    for name, col in profile.columns.items():
        if name in exclude or col.type not in {"VARCHAR", "BOOLEAN"}:
            continue
        if col.null_rate > MAX_FEATURE_NULL_RATE:
            continue  # mostly NULL: a slice of the rows that happen to have a value
        if not 2 <= col.distinct <= SLICE_MAX_VALUES or not col.values:
            continue
        counts = [n for _, n in col.values] + ([col.nulls] if col.nulls else [])
        smallest = min(counts) / profile.rows * window_rows
        if smallest < min_rows:
            rejected.append(f"{name} (smallest value ~{smallest:.0f} rows per test window)")
        elif len(chosen) < MAX_SLICES:
            chosen.append(name)
    if chosen:
        notes.inferred.append(
            f"slices: {', '.join(chosen)} (every value >= {min_rows} rows in a {test_days}-day "
            "test window)"
        )
    if rejected:
        notes.inferred.append(
            f"not slices (< {min_rows} rows of some value in a {test_days}-day test window): "
            + ", ".join(rejected)
        )
    return chosen


# -- model sections ---------------------------------------------------------------------------


def plan_training(daily: DailyProfile) -> dict[str, object] | None:
    """The first training window: `TRAINING_SHARE` of the data's days, at most the default
    `window_days`, with validation and test of the default length or a third of the window.
    None when the data is too short for three non-trivial splits."""
    default = TrainingSection()
    window = min(default.window_days, int(daily.span_days * TRAINING_SHARE))
    held = min(default.split.test_days, window // 3)
    if held < 2 or window - 2 * held < 2:
        return None
    return {
        "window_days": window,
        "split": {"validation_days": held, "test_days": held},
        "seed": default.seed,
        "search": {"method": default.search.method, "budget": default.search.budget},
        "models": list(default.models),
    }


def model_sections(
    kind: str,
    daily: DailyProfile,
    training: dict[str, object],
    expected_drift: tuple[str, ...],
    notes: Notes,
) -> dict[str, object]:
    """`training`, `evaluation` with a floor sound for the task, `monitoring` sized to the data."""
    metric, floor, gap = FLOORS[kind]
    window = training["window_days"]
    held = training["split"]["test_days"]
    defaults = MonitoringSection()
    # A trailing window long enough to hold MIN_JUDGED_ROWS on typical days (a few rows a day
    # need weeks), capped so a verdict still reacts within a month.
    days = defaults.performance_window_days
    if daily.median_rows * days * JUDGED_SHARE < MIN_JUDGED_ROWS:
        needed = math.ceil(MIN_JUDGED_ROWS / (JUDGED_SHARE * max(daily.median_rows, 1)))
        days = min(MAX_PERFORMANCE_WINDOW_DAYS, needed)
    per_window = daily.median_rows * days
    # The default (2000 rows) would never judge a small dataset; 80% of a typical trailing window
    # still lets a window with a few short days be judged.
    min_rows = int(
        min(defaults.performance_min_rows, max(MIN_JUDGED_ROWS, JUDGED_SHARE * per_window))
    )
    evaluation = {"metric": metric, "floor": floor, "max_slice_gap": gap}
    monitoring = {
        "expected_drift": list(expected_drift),
        "performance_window_days": days,
        "performance_min_rows": min_rows,
    }
    monitored = daily.span_days - window
    notes.inferred.append(
        f"training: first window {window} days ({window - 2 * held} train / {held} validation / "
        f"{held} test), leaving {monitored} days for `make run` to score and monitor"
    )
    notes.inferred.append(
        f"evaluation: {metric} >= {floor} (blocking floor), slice gap <= {gap} {metric}"
    )
    notes.inferred.append(
        f"monitoring: performance judged on >= {min_rows} labelled rows per "
        f"{days}-day window (about {per_window:.0f} expected)"
    )
    if kind == "regression":
        notes.review.append(
            f"evaluation: r2 is measured within each slice against the slice's own mean, so a "
            f"slice column that explains much of the label lowers its slices' r2 without the "
            f"model being worse there; the slice gap ({gap}) may need widening or fewer slices"
        )
    return {"training": training, "evaluation": evaluation, "monitoring": monitoring}
