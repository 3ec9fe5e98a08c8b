-- The rows of one source file (_sourced, from sourced.sql) placed in the window [$start, $end].
INSERT INTO {raw_table} ({raw_columns}, _event_time, _partition_date, _source_file,
                         _source_checksum, _source_row, _ingested_at, _run_id)
SELECT {raw_columns}, _event_time, _partition_date, $source_file, $checksum, _source_row,
       $ingested_at, $run_id
FROM _sourced
WHERE _partition_date BETWEEN $start AND $end
