-- The champion's training window of features: the reference distribution for drift.
SELECT _partition_date, {columns}
FROM {features_table}
WHERE _partition_date BETWEEN $start AND $end
