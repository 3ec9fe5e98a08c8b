-- One source file's rows for the partition window [$start, $end], as text, with lineage.
-- The event time is evaluated on TRY_CAST copies; the stored values stay exactly as read.
INSERT INTO {raw_table} ({raw_columns}, _event_time, _partition_date, _source_file,
                         _source_checksum, _source_row, _ingested_at, _run_id)
WITH src AS ({reader}),
numbered AS (SELECT *, row_number() OVER () AS _source_row FROM src),
typed AS (SELECT numbered AS _r, {typed_columns} FROM numbered),
timed AS (SELECT _r, {event_time} AS _event_time FROM typed)
SELECT {struct_columns}, _event_time, CAST(_event_time AS DATE), $source_file, $checksum,
       _r._source_row, $ingested_at, $run_id
FROM timed
WHERE CAST(_event_time AS DATE) BETWEEN $start AND $end
