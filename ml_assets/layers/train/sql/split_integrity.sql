-- Per split: rows, distinct keys, day bounds, NULL labels, distinct label values and their
-- range; and how many keys appear in more than one split (a leak between train and evaluation).
WITH per_split AS (
    SELECT
        _split AS split,
        count(*) AS rows,
        count(DISTINCT _key) AS keys,
        min(_partition_date) AS first_day,
        max(_partition_date) AS last_day,
        count(*) FILTER (WHERE _label IS NULL) AS null_labels,
        count(DISTINCT _label) AS label_values,
        min(_label) AS label_min,
        max(_label) AS label_max
    FROM {training_set}
    GROUP BY 1
),
shared AS (
    SELECT count(*) AS shared_keys
    FROM (SELECT _key FROM {training_set} GROUP BY 1 HAVING count(DISTINCT _split) > 1)
)
SELECT per_split.*, shared.shared_keys FROM per_split, shared ORDER BY first_day
