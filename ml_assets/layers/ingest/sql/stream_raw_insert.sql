-- The stream ledger's rows of the window [$start, $end] into raw: the topic partition is the
-- "file", the offset the row; `_ingested_at` is when the message reached the ledger.
INSERT INTO {raw_table} ({raw_columns}, _event_time, _partition_date, _source_file,
                         _source_checksum, _source_row, _ingested_at, _run_id)
SELECT {raw_columns}, _event_time, _partition_date,
       'kafka://' || _topic || '/' || _partition, 'kafka:' || _topic || ':' || _partition,
       _offset, _ingested_at, $run_id
FROM {stream_rows_table}
WHERE _partition_date BETWEEN $start AND $end
