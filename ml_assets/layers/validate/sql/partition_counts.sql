-- raw, validated and quarantined rows per day of a window: the row-conservation ledger.
WITH days AS (
    SELECT d::DATE AS day FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) g(d)
),
r AS (SELECT _partition_date AS day, count(*) AS n FROM {schema}.raw
      WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL),
v AS (SELECT _partition_date AS day, count(*) AS n FROM {schema}.validated
      WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL),
q AS (SELECT _partition_date AS day, count(*) AS n FROM {schema}.quarantine
      WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL)
SELECT days.day, coalesce(r.n, 0) AS raw, coalesce(v.n, 0) AS validated, coalesce(q.n, 0) AS quarantined
FROM days LEFT JOIN r USING (day) LEFT JOIN v USING (day) LEFT JOIN q USING (day)
ORDER BY days.day
