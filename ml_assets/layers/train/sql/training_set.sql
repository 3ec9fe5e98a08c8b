-- Replace the training set with the labelled rows of [$start, $end], split by time.
-- Numeric features become DOUBLE and categorical ones VARCHAR, so the model input has one shape
-- whatever the features SQL produced. Rows are ordered by time so "most recent rows" is a slice.
CREATE OR REPLACE TABLE {training_set} AS
SELECT
    _key,
    _event_time,
    _partition_date,
    CAST(_label AS DOUBLE) AS _label,
    _label_known_at,
    {feature_columns},
    {split} AS _split
FROM {features}
WHERE _partition_date BETWEEN $start AND $end
  AND _label IS NOT NULL
ORDER BY _partition_date, _event_time, _key
