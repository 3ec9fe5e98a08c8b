"""Request bodies as rows: this service's own shape and MLflow's scoring-server shapes.

Rows come out as `{field: value}` dicts; whether the fields are right is the contract's call
(`online/compute.py`), not this module's.
"""

from __future__ import annotations

from typing import Any


class PayloadError(ValueError):
    """The body has none of the accepted shapes."""


def _rows(value: Any, where: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise PayloadError(f"{where}: expected a list of objects")
    return value


def predict_rows(body: Any) -> list[dict]:
    """`{field: value}` (one row), `[{...}, ...]` or `{"rows": [{...}, ...]}` (a batch)."""
    if isinstance(body, list):
        return _rows(body, "body")
    if isinstance(body, dict):
        if set(body) == {"rows"}:
            return _rows(body["rows"], "rows")
        return [body]
    raise PayloadError("expected an object (one row), a list of objects or {'rows': [...]}")


def invocation_rows(body: Any) -> list[dict]:
    """MLflow's scoring server: `dataframe_split`, `dataframe_records` or `inputs`."""
    if (
        not isinstance(body, dict)
        or len(body.keys() & {"dataframe_split", "dataframe_records", "inputs"}) != 1
    ):
        raise PayloadError("expected exactly one of dataframe_split, dataframe_records, inputs")
    if "dataframe_records" in body:
        return _rows(body["dataframe_records"], "dataframe_records")
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
            raise PayloadError("dataframe_split: expected {columns: [...], data: [[...], ...]}")
        columns, data = split["columns"], split.get("data")
        if not isinstance(data, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in data
        ):
            raise PayloadError("dataframe_split.data: expected rows as long as 'columns'")
        return [dict(zip(columns, r, strict=True)) for r in data]
    inputs = body["inputs"]
    if isinstance(inputs, dict):  # columnar: {field: [values]}
        lengths = {len(v) for v in inputs.values() if isinstance(v, list)}
        if len(lengths) != 1 or not all(isinstance(v, list) for v in inputs.values()):
            raise PayloadError("inputs: expected {field: [values]} of equal lengths")
        (n,) = lengths
        return [{k: v[i] for k, v in inputs.items()} for i in range(n)]
    return _rows(inputs, "inputs")
