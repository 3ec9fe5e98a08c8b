-- How often the candidate decided as the champion on the online rows both scored since its
-- trial began: rows the champion answered with the candidate in shadow, and rows the candidate
-- answered as the canary with the champion in shadow. Rows without both decisions (a shadow
-- model that failed, a regression model) do not count.
SELECT count(*) AS compared_rows,
       avg(CAST(shadow_agree AS DOUBLE)) AS agreement,
       count(DISTINCT request_id) AS requests
FROM {requests_table}
WHERE shadow_agree IS NOT NULL
  AND received_at >= $since
  AND (
      (served_by = 'champion' AND model_version = $champion AND shadow_model_version = $candidate)
      OR (served_by = 'canary' AND model_version = $candidate AND shadow_model_version = $champion)
  )
