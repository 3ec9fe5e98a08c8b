-- Rows, and distinct combinations of the candidate key columns among rows where all are set.
SELECT count(*) AS rows,
       count(*) FILTER (WHERE {all_present}) AS keyed_rows,
       (SELECT count(*) FROM (SELECT DISTINCT {columns} FROM _typed WHERE {all_present})) AS keys
FROM _typed
