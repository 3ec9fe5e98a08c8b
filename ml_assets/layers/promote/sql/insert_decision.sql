INSERT INTO governance.model_decisions (
    decided_at, dagster_run_id, dataset, model_name, candidate_version,
    previous_champion_version, new_champion_version, decision, reason, metrics, checks,
    "trigger", code_version
)
VALUES (
    $decided_at, $dagster_run_id, $dataset, $model_name, $candidate_version,
    $previous_champion_version, $new_champion_version, $decision, $reason, $metrics, $checks,
    $trigger, $code_version
)
RETURNING decision_id;
