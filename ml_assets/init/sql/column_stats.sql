-- One column of the typed file: rows, NULLs, distinct values and its range, as text (numbers and
-- times are parsed by the caller; the range of a text column is not used).
SELECT count(*) AS rows,
       count(*) - count({column}) AS nulls,
       count(DISTINCT {column}) AS distinct_values,
       CAST(min({column}) AS VARCHAR) AS minimum,
       CAST(max({column}) AS VARCHAR) AS maximum
FROM _typed
