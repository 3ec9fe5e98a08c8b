-- One ingestion: the window's days are deleted and rewritten from the log's files (run in
-- one transaction by the caller), so a rerun of a day replaces it and never duplicates rows.
DELETE FROM {requests_table} WHERE _partition_date BETWEEN $start AND $end;
INSERT INTO {requests_table} BY NAME
SELECT *, $run_id AS dagster_run_id, now() AS _ingested_at
FROM _logged_requests;
