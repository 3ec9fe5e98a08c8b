-- The label as the validated layer computes it (`CAST(<label> AS DOUBLE)`): labelled rows, mean
-- (the positive share of a binary label), spread and range.
WITH labels AS (SELECT CAST({label} AS DOUBLE) AS _label FROM _typed)
SELECT count(*) AS rows,
       count(_label) AS labelled,
       avg(_label) AS mean,
       stddev_samp(_label) AS sd,
       min(_label) AS minimum,
       max(_label) AS maximum,
       count(DISTINCT _label) AS distinct_values
FROM labels
