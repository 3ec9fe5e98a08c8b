"""Values made JSON-ready: metrics and gates go to audit rows, MLflow artifacts and metadata.

JSON has no NaN or infinity, and an undefined metric is NaN by design (see the evaluate layer),
so every writer of JSON converts through here: NaN and infinities become null, never invalid text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def json_ready(value: object) -> object:
    """`value` with non-finite floats as None, mappings with str keys, tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value
