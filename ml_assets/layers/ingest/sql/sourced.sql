-- Every row of one source file, as read, with its line number, its event time and where it goes:
-- a partition day (_partition_date, _reason NULL), or no day and the reason it fits none.
-- The one definition of placement: the landing sensor's inspection and the raw write both use it.
-- The event time is evaluated on TRY_CAST copies; the stored values stay exactly as read.
WITH src AS ({reader}),
numbered AS (SELECT *, row_number() OVER () AS _source_row FROM src),
typed AS (SELECT numbered AS _r, {typed_columns} FROM numbered),
timed AS (SELECT _r, {event_time} AS _event_time FROM typed),
judged AS (
    SELECT _r, _event_time,
           CASE
               WHEN _event_time IS NULL THEN {missing_time_reason}
               WHEN CAST(_event_time AS DATE) NOT BETWEEN $first AND $last THEN
                   'outside_partitions: ' || strftime(_event_time, '%Y-%m-%d %H:%M:%S') || ' '
                   || $timezone || ' not in [' || CAST($first AS VARCHAR) || ', '
                   || CAST($last AS VARCHAR) || ']'
           END AS _reason
    FROM timed
)
SELECT {struct_columns}, _r._source_row AS _source_row, _event_time,
       CASE WHEN _reason IS NULL THEN CAST(_event_time AS DATE) END AS _partition_date, _reason
FROM judged
