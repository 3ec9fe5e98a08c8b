"""What a search works on and what it records: the splits in model form, and one trial.

Shared by the grid searches (`search.py`) and the Optuna search (`optuna_search.py`), so the
tracking layer logs every method's trials in one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

TrialState = Literal["complete", "pruned"]


@dataclass(frozen=True)
class Split:
    """One split in model form: the matrix, the label and the row keys."""

    X: pd.DataFrame
    y: np.ndarray
    keys: np.ndarray


@dataclass(frozen=True)
class Trial:
    """One parameter set tried. A pruned trial (Optuna) stopped before its last boosting round,
    so it has no final validation metrics: `validation` is empty and `last_value` holds the
    primary metric at the round it was stopped (`rounds`)."""

    params: dict[str, Any]
    train_rows: int
    validation: dict[str, float]
    state: TrialState = "complete"
    rounds: int | None = None  # boosting rounds trained, where the search watched them
    last_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row of this trial in the logged trials table (`search_trials.json`)."""
        return {
            "params": self.params,
            "train_rows": self.train_rows,
            "validation": self.validation,
            "state": self.state,
            "rounds": self.rounds,
            "last_value": self.last_value,
        }
