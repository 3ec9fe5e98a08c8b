INSERT INTO {quarantine_table} BY NAME
SELECT {raw_columns}, _event_time, _partition_date, _source_file, _source_checksum, _source_row,
       _ingested_at, _reasons, $validated_at AS _quarantined_at, $run_id AS _run_id
FROM _flagged
WHERE len(_reasons) > 0
