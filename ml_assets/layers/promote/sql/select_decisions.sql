SELECT
    decision_id, decided_at, dagster_run_id, dataset, model_name, candidate_version,
    previous_champion_version, new_champion_version, decision, reason,
    CAST(metrics AS VARCHAR), CAST(checks AS VARCHAR), "trigger", code_version
FROM governance.model_decisions
WHERE dataset = $dataset AND ($model_name IS NULL OR model_name = $model_name)
ORDER BY decision_id;
