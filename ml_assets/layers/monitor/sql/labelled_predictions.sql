-- Predictions of a window joined to the labels that have arrived for them.
SELECT p._partition_date, p._key, p.score, f._label, p.model_version
FROM {predictions_table} p
JOIN {features_table} f ON f._key = p._key AND f._partition_date = p._partition_date
WHERE p._partition_date BETWEEN $start AND $end
  AND f._label IS NOT NULL
  AND f._label_known_at <= $known_by
ORDER BY p._partition_date, p._key
