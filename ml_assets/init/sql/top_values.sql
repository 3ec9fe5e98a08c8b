-- The values of a low-cardinality column with their row counts, most frequent first.
SELECT CAST({column} AS VARCHAR) AS value, count(*) AS rows
FROM _typed
WHERE {column} IS NOT NULL
GROUP BY ALL
ORDER BY rows DESC, value
LIMIT $limit
