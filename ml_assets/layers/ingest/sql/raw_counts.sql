-- Rows per partition day in a window, zero-filled so an empty day is visible as 0.
SELECT d::DATE AS day, count(r._partition_date) AS rows
FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) AS g(d)
LEFT JOIN {raw_table} r ON r._partition_date = d::DATE
GROUP BY ALL
ORDER BY day
