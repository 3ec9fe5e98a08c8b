"""Request-time features from a snapshot: raw fields in, the model's feature row out.

The same definitions as the offline build, computed another way, so the parity check can catch
the two drifting apart:
  - fields are typed and checked with the contract's own casts and rules (`validate/contract.py`)
    on a private in-memory DuckDB, so a request is refused for exactly what would quarantine it;
  - `column` and `calendar` features and the hand-written feature SQL run on that DuckDB over the
    request's rows and the snapshot's lookups (the SQL reads only the row and the lookups; one
    that read other rows of `{validated}` would fail the parity check), all in one statement per
    request (`sql/request_features.sql`): DuckDB plans every statement anew, ~2-4 ms each here;
  - window features are aggregates over slices of the snapshot's per-entity streams, and
    declared `lookup` features the rows found in the snapshot's lookups sorted by key and time
    (`_Join`), in NumPy: a join in the statement would scan its whole table per request.
The result is columns (`FeatureRows`), which the service scores without building a DataFrame.
Nothing here opens the warehouse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml_assets.core.spec import DatasetSpec, FeatureColumn, LookupJoin
from ml_assets.core.sql import ident, render
from ml_assets.layers.features.declared import expression
from ml_assets.layers.features.lookups import (
    join_rows_sql,
    key_text,
    lookup_features,
    value_column,
    value_type,
)
from ml_assets.layers.features.query import (
    load_feature_files,
    parameters,
    render_file,
    substitute_parameters,
)
from ml_assets.layers.ingest.files import event_time_sql
from ml_assets.layers.online.build import entity_expr
from ml_assets.layers.online.combine import Combiner
from ml_assets.layers.online.hoist import hoist
from ml_assets.layers.online.schema import MICROS_PER_HOUR, OnlineSchema, WindowFeature
from ml_assets.layers.online.store import read_manifest
from ml_assets.layers.validate.contract import INTEGER_TYPES, reason_exprs, typed_expr, typed_name

SQL = Path(__file__).parent / "sql"

_RULES = {
    "null": "required field is missing or null",
    "type": "not a valid {type}",
    "not_finite": "must be a finite number",
    "range": "outside the allowed range [{min}, {max}]",
    "allowed": "not one of the allowed values {allowed}",
    "tz_missing": "a timestamp with a UTC offset is required",
}


# What the fast path types in Python; any other value (or column type) takes the DuckDB path.
_INT_RANGE = {"INTEGER": (-(2**31), 2**31 - 1), "BIGINT": (-(2**63), 2**63 - 1)}
_ARROW = {
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}
_ISO_TZ = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


# Requests of more rows run alone: their statement's fixed cost is already shared by their rows.
COMBINE_MAX_ROWS = 16


class _Unsure(Exception):
    """A value the fast path does not type with certainty: the DuckDB path decides."""


def _fast_value(value: object, kind: str) -> object:
    """`value` typed as the contract's SQL would type its text, or _Unsure."""
    if isinstance(value, bool):
        raise _Unsure
    if kind in INTEGER_TYPES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int):
            low, high = _INT_RANGE[kind]
            if low <= value <= high:
                return value
        raise _Unsure
    if kind == "DOUBLE":
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
        raise _Unsure
    if kind == "VARCHAR":
        if isinstance(value, str):
            return value
        raise _Unsure
    if kind == "TIMESTAMPTZ" and isinstance(value, str) and _ISO_TZ.fullmatch(value):
        return dt.datetime.fromisoformat(value).astimezone(dt.UTC)
    raise _Unsure


@dataclass(frozen=True)
class FieldError:
    row: int
    field: str
    error: str


class RequestError(ValueError):
    """A request the contract refuses; `errors` name each row and field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(f"row {first.row}: field '{first.field}': {first.error}")


@dataclass
class _Stream:
    index: dict[str, tuple[int, int]]
    t: np.ndarray
    lag: np.ndarray
    v: np.ndarray
    key: np.ndarray


def _load_stream(path: Path) -> _Stream:
    table = pq.read_table(path)
    entity = table.column("_entity").to_numpy(zero_copy_only=False)
    index: dict[str, tuple[int, int]] = {}
    if len(entity):
        starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
        stops = np.r_[starts[1:], len(entity)]
        index = {entity[a]: (int(a), int(b)) for a, b in zip(starts, stops, strict=True)}
    return _Stream(
        index=index,
        t=table.column("_t").to_numpy(),
        lag=table.column("_lag").to_numpy(),
        v=table.column("_v").to_numpy().astype("float64"),
        key=table.column("_key").to_numpy(zero_copy_only=False),
    )


@dataclass
class _Join:
    """One declared lookup join's rows (`features/lookups.py`), sorted by key and time."""

    spec: LookupJoin
    index: dict[str, tuple[int, int]]
    t: np.ndarray  # epoch microseconds (unused for a join on the key alone)
    values: dict[str, np.ndarray]  # per feature: float64, object, or datetime64[us] for an age

    def rows(self, keys: Sequence[str | None], t: np.ndarray) -> np.ndarray:
        """The row each event finds, -1 for none: as `lookup_features.sql`'s joins do."""
        found = np.full(len(keys), -1, dtype="int64")
        max_age = self.spec.max_age_hours
        for i, key in enumerate(keys):
            lo, hi = self.index.get(key, (0, 0)) if key is not None else (0, 0)
            if hi == lo:
                continue
            if self.spec.time is None:
                found[i] = lo
                continue
            j = lo + int(np.searchsorted(self.t[lo:hi], t[i], side="right")) - 1
            if j >= lo and (max_age is None or self.t[j] >= t[i] - max_age * MICROS_PER_HOUR):
                found[i] = j
        return found


def _load_join(db: duckdb.DuckDBPyConnection, spec: DatasetSpec, name: str) -> _Join:
    tables = {f"ref_{t}": spec.names.ref_table(t) for t in spec.lookups}
    features = lookup_features(spec, name)
    value_names = ", ".join(ident(value_column(c)) for c in features)
    table = db.sql(
        f"SELECT _lk, epoch_us(_lt) AS _lt{', ' if features else ''}{value_names} "
        f"FROM ({join_rows_sql(spec, name).format(**tables)}) ORDER BY _lk, _lt"
    ).to_arrow_table()
    keys = table.column("_lk").to_numpy(zero_copy_only=False)
    index: dict[str, tuple[int, int]] = {}
    if len(keys):
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        stops = np.r_[starts[1:], len(keys)]
        index = {keys[a]: (int(a), int(b)) for a, b in zip(starts, stops, strict=True)}
    values = {}
    for column, feature in features.items():
        raw = table.column(value_column(column))
        kind = value_type(feature)
        if kind == "TIMESTAMP":
            values[column] = raw.to_numpy(zero_copy_only=False).astype("datetime64[us]")
        elif kind == "DOUBLE":
            values[column] = raw.to_numpy(zero_copy_only=False).astype("float64")
        else:
            values[column] = _categorical(raw.to_pylist())
    t = table.column("_lt").fill_null(0).to_numpy().astype("int64")
    return _Join(spec.features.lookups[name], index, t, values)


def _lookup_value(
    feature: FeatureColumn, values: np.ndarray, found: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """The feature of each event from its found row (-1: none), as the offline SELECT has it."""
    hit = found >= 0
    age = feature.lookup.age
    if age is not None:
        out = np.full(len(found), np.nan)
        unit = {"year": "Y", "month": "M", "day": "D"}[age]
        built = values[found[hit]].astype(f"datetime64[{unit}]")
        event = t[hit].astype("datetime64[us]").astype(f"datetime64[{unit}]")
        diff = (event - built).astype("float64")
        diff[np.isnat(built)] = np.nan
        out[hit] = diff
        return out
    if values.dtype == object:
        out = np.full(len(found), None, dtype=object)
    else:
        out = np.full(len(found), np.nan)
    out[hit] = values[found[hit]]
    return out


def _text(value: object) -> str | None:
    """A JSON value as the raw layer holds it: text (booleans as DuckDB casts them)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class FeatureRows:
    """A request's feature rows as columns: what the service scores, without a DataFrame."""

    keys: list[str]
    event_times: list[dt.datetime]  # the event time (TIMESTAMP, no zone), per row
    columns: dict[str, np.ndarray]  # every feature: float64 (numeric) or object (categorical)

    def __len__(self) -> int:
        return len(self.keys)

    def split(self, sizes: Sequence[int]) -> list[FeatureRows]:
        """Consecutive runs of `sizes` rows (summing to all of them), as their own rows."""
        if sum(sizes) != len(self):
            raise ValueError(f"sizes {list(sizes)} do not sum to {len(self)} rows")
        out, start = [], 0
        for size in sizes:
            end = start + size
            out.append(
                FeatureRows(
                    self.keys[start:end],
                    self.event_times[start:end],
                    {c: v[start:end] for c, v in self.columns.items()},
                )
            )
            start = end
        return out

    @staticmethod
    def concat(parts: Sequence[FeatureRows]) -> FeatureRows:
        """The rows of `parts`, in order, as one (the inverse of `split`)."""
        return FeatureRows(
            [k for p in parts for k in p.keys],
            [t for p in parts for t in p.event_times],
            {c: np.concatenate([p.columns[c] for p in parts]) for c in parts[0].columns},
        )

    def frame(self) -> pd.DataFrame:
        """`_key`, `_event_time`, every feature, one row per request row."""
        return pd.DataFrame(
            {
                "_key": pd.Series(self.keys, dtype="object"),
                "_event_time": pd.Series(self.event_times, dtype="datetime64[us]"),
                **{c: pd.Series(v) for c, v in self.columns.items()},
            }
        )


def _numeric(values: list) -> np.ndarray:
    """As `pd.to_numeric(errors="coerce")` then float64: NULL and text that is no number: NaN."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value is not None:
            with contextlib.suppress(TypeError, ValueError):
                out[i] = float(value)
    return out


def _categorical(values: list) -> np.ndarray:
    """Objects, NULL (and a NaN) as None."""
    return np.asarray(
        [None if isinstance(v, float) and math.isnan(v) else v for v in values], dtype=object
    )


class OnlineFeatures:
    """One published snapshot, loaded: computes features for batches of raw request rows.

    Safe to share between threads: each thread works on its own DuckDB cursor.
    """

    def __init__(self, spec: DatasetSpec, snapshot: Path) -> None:
        self.spec = spec
        self.snapshot = snapshot
        self.manifest = read_manifest(snapshot)
        self.schema = OnlineSchema.from_dict(self.manifest["schema"])
        self.streams = {
            s.name: _load_stream(snapshot / "streams" / f"{s.name}.parquet")
            for s in self.schema.streams
        }
        self._db = duckdb.connect()
        self._cursor_lock = threading.Lock()
        self._local = threading.local()
        self._db.execute("SET TimeZone = 'UTC'")
        # A request is a few rows: one thread avoids waking a pool per query.
        self._db.execute("SET threads = 1")
        self._db.execute(f"CREATE SCHEMA {spec.names.schema}")
        for name in spec.lookups:
            self._db.execute(
                f"CREATE TABLE {spec.names.ref_table(name)} AS SELECT * FROM read_parquet($path)",
                {"path": str(snapshot / "lookups" / f"{name}.parquet")},
            )
        self._joins = {
            name: _load_join(self._db, spec, name)
            for name in spec.features.lookups
            if lookup_features(spec, name)
        }
        self._sql_files = [f for f in load_feature_files(spec) if not f.generated]
        self._queries = self._hoist_lookups()
        self.fields = set(self.schema.required) | set(self.schema.optional)
        self._stream_of = {s.name: s for s in self.schema.streams}
        self._prepare_sql()
        self._combiner: Combiner[list[list], FeatureRows] = Combiner(self._from_typed_many)

    def _hoist_lookups(self) -> list[str]:
        """Each SQL file's per-request query; its lookup-only CTEs created once as tables."""
        queries, created = [], {}
        for file in self._sql_files:
            sql = render_file(file, self.spec, "_request_validated")
            split = hoist(sql, "_request_validated")
            if any(created.get(n, body) != body for n, body in split.tables.items()):
                queries.append(sql)  # a name another file hoisted differently: run it whole
                continue
            for name, body in split.tables.items():
                if name not in created:
                    self._db.execute(f"CREATE TABLE {ident(name)} AS {body}")
                    created[name] = body
            queries.append(split.query)
        return queries

    def _prepare_sql(self) -> None:
        cols = self.spec.contract.columns
        labels = set(self.schema.label_fields)
        reasons = [e for c, col in cols.items() if c not in labels for e in reason_exprs(c, col)]
        self._typed_sql = render(
            SQL / "request_typed.sql",
            typed_columns=", ".join(
                f"{typed_expr(c, col)} AS {typed_name(c)}" for c, col in cols.items()
            ),
            reason_exprs=",\n        ".join(reasons),
            typed_as_names=", ".join(f"{typed_name(c)} AS {ident(c)}" for c in cols),
        )
        validated_sql = render(
            SQL / "request_validated.sql",
            event_time=event_time_sql(self.spec),
            key_columns=", ".join(ident(k) for k in self.spec.contract.unique_key),
        )
        by_stream = {s.name: s.by for s in self.schema.streams}
        row_features = {
            c: f
            for c, f in self.spec.features.declared.items()
            if f.window is None and f.lookup is None
        }
        types = {
            c: "DOUBLE" if k == "numeric" else "VARCHAR" for c, k in self.schema.features.items()
        }
        self._types = types
        rows_sql = render(
            SQL / "request_rows.sql",
            entities="".join(
                [
                    *(
                        f", {entity_expr(by)} AS {ident('_e_' + name)}"
                        for name, by in by_stream.items()
                    ),
                    *(
                        f", {key_text([ident(c) for c in join.spec.key])} AS {ident('_lk_' + name)}"
                        for name, join in self._joins.items()
                    ),
                ]
            ),
            row_features="".join(
                f", CAST({expression(f, {})} AS {types[c]}) AS {ident(c)}"
                for c, f in row_features.items()
            ),
        )
        # The typed values come in as one list per column ($1: the row numbers).
        typed_params = ", ".join(
            [
                "unnest($1::BIGINT[]) AS _row",
                *(
                    f"unnest(${i}::{col.type}[]) AS {ident(c)}"
                    for i, (c, col) in enumerate(cols.items(), start=2)
                ),
            ]
        )
        self._param_types = ["BIGINT", *(col.type for col in cols.values())]
        # A file's $start/$end are the request's partition dates, read in SQL: one statement.
        lookback = int(self.spec.features.lookback_days)
        bounds = {
            "start": "(SELECT min(_partition_date) FROM _request_validated)",
            "end": "(SELECT max(_partition_date) FROM _request_validated)",
            "history_start": f"(SELECT min(_partition_date) - {lookback} FROM _request_validated)",
            "label_delay_days": str(int(self.spec.label.delay_days)),
            "lookback_days": str(lookback),
        }
        day = dt.date(2000, 1, 1)
        queries = []
        for sql in self._queries:
            parameters(sql, self.spec, day, day)  # unknown parameters fail here, by name
            queries.append(substitute_parameters(sql, bounds))
        head = f"WITH _request_typed AS (SELECT {typed_params}), _request_validated AS ({validated_sql})"
        empty = [[] for _ in range(len(cols) + 1)]
        taken = {"_key", *row_features}
        features, joins = [], []
        for i, sql in enumerate(queries):
            probe = self._db.execute(f"{head} SELECT * FROM ({sql}) LIMIT 0", empty)
            mine = [d[0] for d in probe.description if d[0] in types and d[0] not in taken]
            taken.update(mine)
            features += [f", q{i}.{ident(c)}" for c in mine]
            joins.append(f"\nLEFT JOIN ({sql}) AS q{i} ON q{i}._key = r._key")
        self._request_sql = render(
            SQL / "request_features.sql",
            typed_params=typed_params,
            validated=validated_sql,
            rows=rows_sql,
            sql_features="".join(features),
            sql_joins="".join(joins),
        )
        self._validated_check_sql = f"{head} SELECT count(*) FROM _request_validated"
        self._keys_sql = f"{head} SELECT _key FROM _request_validated ORDER BY _row"

    def _check_fields(self, rows: list[dict]) -> None:
        errors = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                errors.append(FieldError(i, "*", "a row must be an object of field: value"))
                continue
            for field, value in row.items():
                if field in self.schema.label_fields:
                    errors.append(FieldError(i, field, "the label is not a request field"))
                elif field not in self.fields:
                    errors.append(FieldError(i, field, "unknown field"))
                elif value is not None and not isinstance(value, str | int | float | bool):
                    errors.append(FieldError(i, field, "must be a string, number or boolean"))
        if errors:
            raise RequestError(errors)

    def _raw_frame(self, rows: list[dict]) -> pa.Table:
        # Arrow text columns: DuckDB scans them as VARCHAR without sniffing Python objects.
        data = {"_row": pa.array(np.arange(len(rows), dtype="int64"))}
        for c in self.spec.contract.columns:
            data[c] = pa.array([_text(row.get(c)) for row in rows], type=pa.string())
        return pa.table(data)

    def _fast_typed(self, rows: list[dict]) -> list[list] | None:
        """The request typed in Python, one list per contract column, when every value is
        plainly valid; None (take the DuckDB path, which names what is wrong) when any value is
        unusual or breaks a rule. A cheap path for the common case, never a second opinion:
        anything it is not sure of, DuckDB decides."""
        cols = self.spec.contract.columns
        if any(col.type not in _ARROW for col in cols.values()):
            return None
        columns = []
        try:
            for name, col in cols.items():
                values = []
                for row in rows:
                    value = row.get(name)
                    if value is None:
                        if not col.nullable:
                            raise _Unsure
                        values.append(None)
                        continue
                    typed = _fast_value(value, col.type)
                    if (col.min is not None and typed < col.min) or (
                        col.max is not None and typed > col.max
                    ):
                        raise _Unsure
                    if col.allowed is not None and typed not in col.allowed:
                        raise _Unsure
                    values.append(typed)
                columns.append(values)
        except _Unsure:
            return None
        return columns

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor of the snapshot's database (cursors are made one at a time)."""
        with self._cursor_lock:
            return self._db.cursor()

    def _thread_cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor, kept for its next requests: a cursor is one thread's at a
        time, and the request statement leaves nothing behind on it."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._cursor()
            cur.execute(f"PREPARE _request AS {self._request_sql}")
            self._local.cursor = cur
        return cur

    def _execute_sql(self, params: list[list]) -> str | None:
        """`EXECUTE _request(...)` of the typed values written as typed list literals, or None
        when a value is not one this writes (the statement then runs with bound parameters).

        A prepared statement whose arguments have its parameters' exact types runs its plan
        without binding and optimizing again (~7.5 -> ~5 ms CPU per request here); DuckDB binds
        Python values only to a statement it plans anew, so the values go in as SQL text, and
        only ints, finite floats, aware datetimes and strings without NUL are written."""
        args = []
        for values, kind in zip(params, self._param_types, strict=True):
            text = []
            for value in values:
                if value is None:
                    text.append("NULL")
                elif isinstance(value, bool):
                    return None
                elif isinstance(value, int):
                    text.append(str(value))
                elif isinstance(value, float):
                    if not math.isfinite(value):
                        return None
                    text.append(repr(value))
                elif isinstance(value, str):
                    if "\x00" in value:
                        return None
                    text.append("'" + value.replace("'", "''") + "'")
                elif isinstance(value, dt.datetime) and value.tzinfo is not None:
                    text.append(f"'{value.isoformat()}'")
                else:
                    return None
            args.append(f"[{', '.join(text)}]::{kind}[]")
        return f"EXECUTE _request({', '.join(args)})"

    def _duckdb_typed(self, rows: list[dict]) -> list[list]:
        """The request typed by the contract's own SQL, one list per contract column; raises
        RequestError naming each row and field the contract refuses."""
        cur = self._cursor()  # its own: the typed rows are a temporary table on it
        try:
            cur.register("_request_raw", self._raw_frame(rows))
            cur.execute(self._typed_sql)
            errors = self._contract_errors(cur)
            if errors:
                raise RequestError(errors)
            names = ", ".join(ident(c) for c in self.spec.contract.columns)
            typed = cur.execute(f"SELECT {names} FROM _request_typed ORDER BY _row").fetchall()
        finally:
            cur.close()
        return [list(column) for column in zip(*typed, strict=True)]

    def _contract_errors(self, cur: duckdb.DuckDBPyConnection) -> list[FieldError]:
        cols = self.spec.contract.columns
        errors = []
        for row, reasons in cur.execute(
            "SELECT _row, _reasons FROM _request_typed WHERE len(_reasons) > 0 ORDER BY _row"
        ).fetchall():
            for reason in reasons:
                rule, _, field = reason.partition(":")
                col = cols[field]
                message = _RULES[rule].format(
                    type=col.type, min=col.min, max=col.max, allowed=col.allowed
                )
                errors.append(FieldError(row, field, message))
        return errors

    def _query(self, typed: list[list]) -> dict[str, list]:
        """The request statement over the typed columns: its output, column by column."""
        params = [list(range(len(typed[0]))), *typed]
        cur = self._thread_cursor()
        try:
            prepared = self._execute_sql(params)
            if prepared is None:
                result = cur.execute(self._request_sql, params)
            else:
                result = cur.execute(prepared)
        except duckdb.Error:
            try:
                cur.execute(self._validated_check_sql, params).fetchall()
            except duckdb.Error:
                raise RequestError(
                    [FieldError(0, "*", "the event time cannot be computed from these fields")]
                ) from None
            raise
        names = [d[0] for d in result.description]
        out = result.fetchall()
        if len(out) != len(typed[0]):  # joined by key: a key twice in the batch
            keys = cur.execute(self._keys_sql, params).fetchall()
        if len(out) != len(typed[0]):
            seen: set[str] = set()
            dupes = [i for i, (key,) in enumerate(keys) if key in seen or seen.add(key)]
            if dupes:
                raise RequestError(
                    [FieldError(i, "*", "duplicate key in the batch") for i in dupes]
                )
            raise ValueError("a feature SQL file returned other than one row per request row")
        values = list(zip(*out, strict=True))
        return dict(zip(names, values, strict=True))

    def typed(self, rows: list[dict]) -> list[list]:
        """The request's values typed by the contract, one list per contract column; raises
        RequestError naming each row and field the contract refuses."""
        if not rows:
            raise RequestError([FieldError(0, "*", "no rows given")])
        self._check_fields(rows)
        typed = self._fast_typed(rows)
        return typed if typed is not None else self._duckdb_typed(rows)

    def compute(self, rows: list[dict]) -> FeatureRows:
        """One feature row per request row, in order, as columns (see `features`)."""
        return self._from_typed(self.typed(rows))

    def compute_combined(self, rows: list[dict]) -> FeatureRows:
        """`compute`, in one statement with the small requests other threads make meanwhile
        (`combine.Combiner`): the same rows, computed for a fraction of the CPU under load.
        Typed (and refused) alone, so one caller's bad field is never another's error."""
        typed = self.typed(rows)
        if len(rows) > COMBINE_MAX_ROWS:
            return self._from_typed(typed)
        return self._combiner(typed)

    def _from_typed_many(self, requests: list[list[list]]) -> list[FeatureRows | Exception]:
        """Each request's rows, from one statement over all of them; each alone when the joint
        one fails (two requests with the same key, a row without an event time), so every
        caller gets its own rows or its own error, numbered within its request."""
        if len(requests) > 1:
            joined = [
                [v for request in requests for v in request[j]] for j in range(len(requests[0]))
            ]
            with contextlib.suppress(Exception):
                return self._from_typed(joined).split([len(r[0]) for r in requests])
        out: list[FeatureRows | Exception] = []
        for request in requests:
            try:
                out.append(self._from_typed(request))
            except Exception as exc:  # this caller's error
                out.append(exc)
        return out

    def _from_typed(self, typed: list[list]) -> FeatureRows:
        base = self._query(typed)
        event_times = list(base["_event_time"])
        missing = [i for i, t in enumerate(event_times) if t is None]
        if missing:
            raise RequestError(
                [FieldError(i, "*", "no event time from these fields") for i in missing]
            )
        keys = list(base["_key"])
        if len(keys) > 1:
            seen: set[str] = set()
            dupes = []
            for i, key in enumerate(keys):
                if key in seen:
                    dupes.append(i)
                seen.add(key)
            if dupes:
                raise RequestError(
                    [FieldError(i, "*", "duplicate key in the batch") for i in dupes]
                )
        t = np.asarray(base["_t"], dtype="int64")
        key_array = np.asarray(keys, dtype=object)
        columns: dict[str, np.ndarray] = {}
        windows = {w.name: w for w in self.schema.windows}
        found = {name: j.rows(base[f"_lk_{name}"], t) for name, j in self._joins.items()}
        declared = self.spec.features.columns
        for column, kind in self.schema.features.items():
            lookup = declared[column].lookup if column in declared else None
            if lookup is not None and lookup.join in found:
                values = self._joins[lookup.join].values[column]
                columns[column] = _lookup_value(declared[column], values, found[lookup.join], t)
            elif column in windows:
                window = windows[column]
                entities = base[f"_e_{self._stream_of[window.stream].name}"]
                columns[column] = self._window(window, entities, t, key_array)
            elif kind == "numeric":
                columns[column] = _numeric(base[column])
            else:
                columns[column] = _categorical(base[column])
        return FeatureRows(keys, event_times, columns)

    def features(self, rows: list[dict]) -> pd.DataFrame:
        """One feature row per request row, in order: `_key`, `_event_time`, every feature.

        Raises RequestError naming the row and field for anything the contract refuses.
        """
        return self.compute(rows).frame()

    def _window(
        self, window: WindowFeature, entities: Sequence[str], t: np.ndarray, keys: np.ndarray
    ) -> np.ndarray:
        """The aggregate of each row's entity's values with time in [t - reach, t - end_gap]."""
        s = self.streams[window.stream]
        out = np.full(len(t), np.nan)
        for i, entity in enumerate(entities):
            lo, hi = s.index.get(entity, (0, 0))
            times = s.t[lo:hi]
            a = lo + int(np.searchsorted(times, t[i] - window.reach_us, side="left"))
            b = lo + int(np.searchsorted(times, t[i] - window.end_gap_us, side="right"))
            values = s.v[a:b]
            keep = np.ones(b - a, dtype=bool)
            if window.max_lag_us is not None:
                keep &= s.lag[a:b] <= window.max_lag_us
            if window.exclude_self:
                keep &= s.key[a:b] != keys[i]
            n = int(keep.sum())
            if window.agg == "count":
                out[i] = n
            elif n:
                total = float(values[keep].sum())
                out[i] = total if window.agg == "sum" else total / n
        return out
