"""`kill -9` at named fault points of real runs, then a plain rerun.

Each case copies the prepared project (`prepared.py`: flights Jan-Feb 2013 through features, a
champion v1 and its predictions of Feb 21-28), runs one real Dagster run in a child process with
`ML_ASSETS_FAULT=<point>` (SIGKILL at that point, `ml_assets/core/faults.py`), and checks:

1. the child died by SIGKILL at the point (not earlier, not by an error);
2. the warehouse is as it was: every table's rows hash the same as before the run, except the
   tables the run had already committed by then, whose partitions are then whole and from one
   run (`content`: the same rows an uninterrupted run writes);
3. a plain rerun (the same job, no fault; it first reaps the dead run, as `make run` does)
   succeeds and ends where an uninterrupted run ends: every table's content as after one, and
   for the model layers, the champion trained on the same data with the same validation
   metrics, with the `champion` alias and the audit table agreeing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml_assets.core.predictor import current_champion
from ml_assets_tests.faults.conftest import Retrain, champion_metrics
from ml_assets_tests.faults.driver import Job, run_job
from ml_assets_tests.faults.prepared import (
    MODEL,
    RETRAIN_AS_OF,
    assert_registry_agrees_with_audit,
    audit,
    data_job,
    decision_numbers,
    expect_success,
    runs_per_day,
    score_job,
    table_states,
    tracking,
    train_job,
    warehouse,
)

DATA_DAYS = ("2013-02-26", "2013-02-28")
AUDIT = "governance.model_decisions"
COUNTER = "governance.decision_ids"  # the audit's numbering: moves with every decision row
PER_RUN = ("flights.raw", "flights.validated", "flights.features", "flights.predictions")


@dataclass(frozen=True)
class Case:
    point: str  # ML_ASSETS_FAULT value
    job: Job
    committed: tuple[str, ...] = ()  # tables the run commits before the point
    model: bool = False  # a training run: converge to the uninterrupted retrain
    env: dict = field(default_factory=dict)


RETRAIN = train_job(RETRAIN_AS_OF, "retrain")
# What the raw step commits in one transaction: the window's rows and the files' ledgers.
RAW = ("flights.raw", "flights.source_file_days", "flights.rejected_rows", "flights.source_files")
CASES = [
    Case("raw.file_written", data_job(*DATA_DAYS)),
    Case("validated.validated_written", data_job(*DATA_DAYS), committed=RAW),
    # One chunk per day: killed after the second of three days, inside the window's transaction.
    Case(
        "features.chunk_written:2",
        data_job(*DATA_DAYS),
        committed=(*RAW, "flights.validated", "flights.quarantine"),
        env={"ML_ASSETS_FEATURE_CHUNK_DAYS": "1"},
    ),
    Case("training_set.written", RETRAIN, model=True),
    Case("training.model_logged", RETRAIN, committed=("flights.training_set",), model=True),
    Case(
        "promotion.audit_recorded",
        RETRAIN,
        committed=("flights.training_set", AUDIT, COUNTER),
        model=True,
    ),
    Case(
        "promotion.alias_moved",
        RETRAIN,
        committed=("flights.training_set", AUDIT, COUNTER),
        model=True,
    ),
    Case("scoring.predictions_written", score_job(*DATA_DAYS)),
    Case(
        "scoring.committed",
        score_job(*DATA_DAYS),
        committed=("flights.predictions", "flights.explanations"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.point for c in CASES])
def test_killed_at_a_fault_point_leaves_the_data_as_it_was_and_a_rerun_converges(
    case: Case, home: Path, project: Path, prepared: Path, retrain: Retrain
) -> None:
    db = warehouse(home)
    before = table_states(db)
    before_content = table_states(db, content=True)
    versions_before = len(tracking(home).client().search_model_versions(f"name = '{MODEL}'"))

    killed = run_job(home, project, case.job, fault=case.point, env=case.env)
    assert killed.killed, (killed.exitcode, killed.errors, killed.log[-3000:])

    after = table_states(db)
    after_content = table_states(db, content=True)
    for table, state in before.items():
        if table in case.committed:
            continue
        assert after.get(table) == state, f"{table} changed by the killed run at {case.point}"
    assert set(after) == set(before)
    for table in case.committed:
        if table == COUNTER:
            counter, newest = decision_numbers(db)
            assert counter == newest, (counter, newest)
        elif table == AUDIT:  # the killed run's decision, written ahead
            (new_row,) = audit(db)[len(audit(Path(prepared) / db.relative_to(home))) :]
            assert new_row[0] == "promoted" and new_row[2] == "1", new_row
        else:  # committed whole: the rows an uninterrupted run writes
            expected = retrain.content if case.model else before_content
            assert after_content[table] == expected[table], table
    if case.point in ("training_set.written", "training.model_logged"):
        # Nothing reached the registry: no new version, the champion unchanged.
        versions = tracking(home).client().search_model_versions(f"name = '{MODEL}'")
        assert len(versions) == versions_before
        assert current_champion(tracking(home), MODEL) == "1"

    rerun = expect_success(run_job(home, project, case.job))
    assert rerun.run_id != killed.run_id

    final = table_states(db, content=True)
    reference = dict(retrain.content if case.model else before_content)
    final_audit = final.pop(AUDIT)
    reference.pop(AUDIT)
    final_counter = final.pop(COUNTER)
    reference_counter = reference.pop(COUNTER)
    counter, newest = decision_numbers(db)
    assert counter == newest, (counter, newest)  # numbered on, with the audit
    assert final == reference, {t: (final.get(t), reference.get(t)) for t in reference}
    for table in PER_RUN:
        assert set(runs_per_day(db, table).values()) <= {1}, f"{table} mixes runs in a day"
    rows = assert_registry_agrees_with_audit(home)
    if case.model:
        version, metrics = champion_metrics(home)
        assert metrics == retrain.champion_metrics  # the same model as an uninterrupted retrain
        # The killed run's decision stays in the trail (written ahead, finished by the rerun).
        written_ahead = case.point.startswith("promotion.")
        assert len(rows) == len(retrain.audit) + written_ahead, rows
        assert rows[-1][:2] == ("promoted", version) and rows[-1][4] == rerun.run_id
    else:
        assert final_audit == before_content[AUDIT]
        assert final_counter == reference_counter
