-- A seeded sample of one day's offline feature rows and their validated rows (the raw inputs
-- the online path recomputes them from). Seeded, so a failure reproduces.
SELECT v.*, {feature_columns}
FROM (
    SELECT * FROM {features_table}
    WHERE _partition_date = $day
    ORDER BY hash(_key, $seed)
    LIMIT $rows
) f
JOIN {validated_table} v USING (_key, _partition_date)
ORDER BY f._key
