-- The training set's test holdout, with the spec's slice columns from validated (by key and
-- day) as `__slice_<column>`: slices need not be model features.
SELECT t.*, {slice_columns}
FROM {training_set} t
JOIN {validated} v ON v._key = t._key AND v._partition_date = t._partition_date
WHERE t._split = 'test'
ORDER BY t._partition_date, t._event_time, t._key
