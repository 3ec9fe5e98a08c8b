-- A window's features with the champion's score: the current distribution for drift.
SELECT f._partition_date, {feature_columns}, p.score
FROM {features_table} f
JOIN {predictions_table} p ON p._key = f._key AND p._partition_date = f._partition_date
WHERE f._partition_date BETWEEN $start AND $end
