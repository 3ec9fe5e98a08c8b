-- One window of features: the feature SQL's rows joined to the validated rows of [$start, $end].
-- Keys, event time, partition and label come from validated, never from the feature SQL, so the
-- SQL cannot move a row to another day or touch its label.
INSERT INTO {features_table} BY NAME
SELECT v._key, v._event_time, v._partition_date, v._label,
       v._event_time + to_days(CAST($label_delay_days AS INTEGER)) AS _label_known_at,
       {feature_casts},
       f._max_history_time, f._max_lookup_time,
       $featurized_at AS _featurized_at, $run_id AS _run_id
FROM (
{feature_query}
) f
JOIN {validated_table} v ON v._key = f._key
WHERE v._partition_date BETWEEN $start AND $end
