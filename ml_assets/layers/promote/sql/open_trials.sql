-- The trials of a dataset's model still open: each candidate's newest trial, with no decision
-- about that candidate recorded since the trial began. Parameters: $dataset, $model_name.
SELECT t.started_at, t.candidate_version, t.champion_version, t."trigger"
FROM governance.shadow_trials t
WHERE t.dataset = $dataset AND t.model_name = $model_name
  AND NOT EXISTS (
      SELECT 1 FROM governance.model_decisions d
      WHERE d.dataset = t.dataset AND d.model_name = t.model_name
        AND d.candidate_version = t.candidate_version AND d.decided_at >= t.started_at
  )
QUALIFY row_number() OVER (PARTITION BY t.candidate_version ORDER BY t.started_at DESC) = 1
ORDER BY t.started_at
