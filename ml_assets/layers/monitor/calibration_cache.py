"""Drift calibrations kept per champion and reference window, computed once instead of per run.

A calibration tests every day of the champion's training window against the whole window
(`calibration.calibrate`): 90 tests on flights, about as long as the rest of a month's drift
report together (measured 33-37 s of a 40-110 s `drift_report` on the 2-core box). It depends
only on that window's features, the champion's scores on them and the drift settings, never on
the monitored days, so a month-by-month replay, or a daily schedule, recomputed the same numbers
on every run until the champion changed.

Each calibration is stored as one JSON file under the generated state
(`data/cache/<dataset>/drift_calibration/`), named after the champion version and window for a
reader and keyed by a digest of everything it is computed from: the reference rows (features and
score, in order), the column lists, the settings and the code of the calibration itself. A
rebuilt window, a changed feature or a new champion therefore gets a new file rather than a stale
verdict, and deleting the folder (`make clean-state`) only costs the recomputation.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml_assets.layers.monitor import calibration, drift
from ml_assets.layers.monitor.calibration import Calibration

# The code a calibration's numbers come from: a change to either module invalidates the cache.
_CODE = (Path(calibration.__file__), Path(drift.__file__))


@dataclass(frozen=True)
class CachedCalibration:
    calibration: Calibration
    path: Path
    hit: bool  # read from the cache rather than computed by this call


def calibration_key(
    reference: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    p_value: float,
    quantile: float,
) -> str:
    """A digest of everything `calibrate` reads: the reference rows (in any order), the columns,
    the settings and the calibration's own code (hashing 82k x 22 values takes ~0.1 s;
    calibrating, 30 s)."""
    digest = hashlib.sha256()
    settings = {
        "numeric": list(numeric),
        "categorical": list(categorical),
        "p_value": p_value,
        "quantile": quantile,
        "columns": [[c, str(t)] for c, t in reference.dtypes.items()],
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    # The rows as a multiset: the reference query has no ORDER BY, so two reads of the same window
    # list its rows in different orders, and the calibration does not depend on their order (each
    # day's values are sorted and counted).
    rows = pd.util.hash_pandas_object(reference, index=False).to_numpy()
    digest.update(np.sort(rows).tobytes())
    for path in _CODE:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def cached_calibration(
    directory: Path,
    *,
    label: str,
    key: str,
    compute: Callable[[], Calibration],
) -> CachedCalibration:
    """The calibration stored under `key`, or `compute()`'s, stored for the next run.

    `label` (e.g. `v4_2013-05-02_2013-07-30`) only names the file for a reader. The file is
    written whole or not at all (a temp file renamed), so a killed run never leaves half a
    calibration, and two runs racing on the same key write the same bytes.
    """
    path = directory / f"{label}_{key}.json"
    if path.exists():
        return CachedCalibration(Calibration.from_record(json.loads(path.read_text())), path, True)
    computed = compute()
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".calibration-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(computed.to_record(), out, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return CachedCalibration(computed, path, False)
