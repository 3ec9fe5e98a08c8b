-- Value counts of one categorical column over the relation bound as `drift_input`.
-- NULL comes back as its own group: the missing values, counted and left out of the test.
SELECT {column} AS category, count(*) AS n
FROM drift_input
GROUP BY ALL
