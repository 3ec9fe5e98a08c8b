-- The parsed batch into the ledger; runs in the batch's transaction, with the offsets upsert.
INSERT INTO {rows_table} ({columns}, _event_time, _partition_date, _topic, _partition, _offset, _key, _ingested_at)
SELECT {columns}, _event_time, _partition_date, _topic, _partition, _offset, _key, $at
FROM _stream_parsed WHERE _reason IS NULL;

INSERT INTO {quarantine_table} (_topic, _partition, _offset, _key, _payload, _reason, _ingested_at)
SELECT _topic, _partition, _offset, _key, _payload, _reason, $at
FROM _stream_parsed WHERE _reason IS NOT NULL;
