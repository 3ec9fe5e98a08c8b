-- The row under the number audit.py just took from governance.decision_ids (see
-- model_decisions_ddl.sql for why a table and not a sequence). No RETURNING (DuckLake has
-- none): audit.py reads the id back by the row's run and decision time after the COMMIT.
INSERT INTO governance.model_decisions (
    decision_id, decided_at, dagster_run_id, dataset, model_name, candidate_version,
    previous_champion_version, new_champion_version, decision, reason, metrics, checks,
    "trigger", code_version
)
SELECT
    (SELECT max(last_id) FROM governance.decision_ids), $decided_at, $dagster_run_id,
    $dataset, $model_name, $candidate_version, $previous_champion_version,
    $new_champion_version, $decision, $reason, $metrics, $checks, $trigger, $code_version;
