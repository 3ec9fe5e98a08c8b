-- Values of a typed time column that are not at midnight (in the profile's UTC session): when
-- there are none, the column holds dates and the hour of day is no feature.
SELECT count(*) FILTER (WHERE CAST(CAST({column} AS TIMESTAMP) AS TIME) <> TIME '00:00:00')
FROM _typed
