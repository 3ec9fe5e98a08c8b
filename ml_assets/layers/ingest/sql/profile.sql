-- One source file at a glance: rows, the span of its event times, the rows placed in a partition
-- and their span, and the rejected rows per reason code (the text before the first ':').
SELECT count(*) AS rows,
       count(_event_time) AS timed,
       CAST(min(_event_time) AS DATE) AS first_date,
       CAST(max(_event_time) AS DATE) AS last_date,
       count(_partition_date) AS placed,
       min(_partition_date) AS placed_first,
       max(_partition_date) AS placed_last,
       histogram(split_part(_reason, ':', 1)) AS rejected
FROM ({sourced})
