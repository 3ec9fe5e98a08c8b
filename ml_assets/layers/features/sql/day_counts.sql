-- Per day of the window: validated rows, feature rows, distinct feature keys, and validated rows
-- with no feature row. The two tables match when all three counts agree and nothing is missing.
WITH days AS (
    SELECT d::DATE AS day FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) g(d)
),
v AS (SELECT _partition_date AS day, count(*) AS n FROM {validated_table}
      WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL),
f AS (SELECT _partition_date AS day, count(*) AS n, count(DISTINCT _key) AS keys FROM {features_table}
      WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL),
missing AS (
    SELECT v._partition_date AS day, count(*) AS n, list(v._key ORDER BY v._key)[1:5] AS sample
    FROM {validated_table} v
    ANTI JOIN (SELECT _key FROM {features_table} WHERE _partition_date BETWEEN $start AND $end) f
        USING (_key)
    WHERE v._partition_date BETWEEN $start AND $end
    GROUP BY ALL
)
SELECT days.day, coalesce(v.n, 0) AS validated, coalesce(f.n, 0) AS features,
       coalesce(f.keys, 0) AS distinct_keys, coalesce(missing.n, 0) AS missing,
       coalesce(missing.sample, []) AS missing_sample
FROM days LEFT JOIN v USING (day) LEFT JOIN f USING (day) LEFT JOIN missing USING (day)
ORDER BY days.day
