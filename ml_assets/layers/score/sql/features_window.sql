-- The feature rows a scoring run covers, in a stable order (lineage columns first).
SELECT _key, _event_time, _partition_date, {feature_columns}
FROM {features_table}
WHERE _partition_date BETWEEN $start AND $end
ORDER BY _partition_date, _key
