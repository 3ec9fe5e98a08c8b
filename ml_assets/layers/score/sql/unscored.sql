-- Feature rows of the window with no prediction: the scoring check's evidence.
SELECT f._partition_date, count(*) AS missing, list(f._key ORDER BY f._key)[1:5] AS sample_keys
FROM {features_table} f
ANTI JOIN {predictions_table} p ON p._key = f._key AND p._partition_date = f._partition_date
WHERE f._partition_date BETWEEN $start AND $end
GROUP BY ALL
ORDER BY 1
