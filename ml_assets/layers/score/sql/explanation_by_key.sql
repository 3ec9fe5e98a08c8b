-- One prediction's explanation, by row key: on $day when given (else the newest day scored),
-- by $model_version when given.
SELECT _key, _partition_date, model_name, model_version, method, margin_units, base_margin,
       raw_margin, top_contributions, other_contribution, dagster_run_id
FROM {explanations_table}
WHERE _key = $key
  AND ($day IS NULL OR _partition_date = $day)
  AND ($model_version IS NULL OR model_version = $model_version)
ORDER BY _partition_date DESC
LIMIT 1
