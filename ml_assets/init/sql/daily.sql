-- Rows and NULLs per column per event day, the day taken as the raw layer takes it (the event
-- time as a naive timestamp in the event zone, cast to DATE).
SELECT CAST({event_time} AS DATE) AS day, count(*) AS rows, {null_counts}
FROM _typed
GROUP BY 1
ORDER BY 1
