-- Per split of the window: rows in features, rows excluded for a NULL label, labelled rows,
-- label mean (the positive rate for a binary label), days present and their bounds.
SELECT
    {split} AS split,
    count(*) AS feature_rows,
    count(*) FILTER (WHERE _label IS NULL) AS null_label_rows,
    count(_label) AS rows,
    avg(_label) AS label_mean,
    count(DISTINCT _partition_date) AS days,
    min(_partition_date) AS first_day,
    max(_partition_date) AS last_day
FROM {features}
WHERE _partition_date BETWEEN $start AND $end
GROUP BY 1
