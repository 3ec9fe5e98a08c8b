-- The rows of one source file (_sourced) that fit no partition, as read, with their reason.
INSERT INTO {rejected_table} ({raw_columns}, _event_time, _source_file, _source_checksum,
                              _source_row, _reason, _ingested_at, _run_id)
SELECT {raw_columns}, _event_time, $source_file, $checksum, _source_row, _reason,
       $ingested_at, $run_id
FROM _sourced
WHERE _reason IS NOT NULL
