-- The newest features day whose labels are all known, and the data frontier it was judged at.
-- frontier = the earlier of `$now` and midnight after the newest features day: in a replay of
-- history that is the end of the loaded data, live it is the clock. A day counts as labelled when
-- its latest `_label_known_at` is at or before the frontier (rows with a NULL `_label_known_at`
-- have nothing to wait for).
WITH days AS (
    SELECT _partition_date AS day, max(_label_known_at) AS known_at
    FROM {features}
    GROUP BY 1
),
frontier AS (
    SELECT least(CAST(max(day) + INTERVAL 1 DAY AS TIMESTAMP), $now) AS at FROM days
)
SELECT max(day) FILTER (WHERE known_at IS NULL OR known_at <= frontier.at) AS labelled_day,
       max(day) AS newest_day,
       any_value(frontier.at) AS frontier
FROM days, frontier
