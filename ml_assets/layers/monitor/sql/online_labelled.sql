-- The online rows of [$start, $end] with what has arrived about them since: the label (once
-- known by $known_by) and the batch prediction of the same key by the same model version.
SELECT o._partition_date AS day, o.model_version, o._key, o.score, o.decision_threshold,
       f._label, p.score AS batch_score
FROM {requests_table} o
LEFT JOIN {features_table} f
       ON f._key = o._key AND f._partition_date = o._partition_date
      AND f._label IS NOT NULL AND f._label_known_at <= $known_by
LEFT JOIN {predictions_table} p
       ON p._key = o._key AND p._partition_date = o._partition_date
      AND p.model_version = o.model_version
WHERE o._partition_date BETWEEN $start AND $end
ORDER BY day, o.model_version, o._key
