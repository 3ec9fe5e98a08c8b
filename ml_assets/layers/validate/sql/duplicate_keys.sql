-- Keys that occur more than once in validated within the window (should be none).
SELECT {key_columns}, count(*) AS copies
FROM {schema}.validated
WHERE _partition_date BETWEEN $start AND $end
GROUP BY ALL
HAVING count(*) > 1
ORDER BY copies DESC
LIMIT 10
