-- Each day's raw row count against the median of the trailing days before it.
WITH days AS (
    SELECT g.d::DATE AS _day
    FROM generate_series(greatest(CAST($start AS DATE) - $trailing::INTEGER, CAST($first AS DATE)),
                         CAST($end AS DATE), INTERVAL 1 DAY) g(d)
),
counts AS (
    SELECT days._day, count(r._partition_date) AS n
    FROM days LEFT JOIN {raw_table} r ON r._partition_date = days._day
    GROUP BY days._day
),
judged AS (
    SELECT _day, n,
           median(n) OVER w AS trailing_median,
           count(n) FILTER (WHERE n > 0) OVER w AS history_days
    FROM counts
    WINDOW w AS (ORDER BY _day ROWS BETWEEN $trailing PRECEDING AND 1 PRECEDING)
)
SELECT _day, n, trailing_median, history_days
FROM judged
WHERE _day BETWEEN $start AND $end
ORDER BY _day
