-- How many rows of one source file (_sourced) belong to each partition day.
INSERT INTO {file_days_table} (checksum, day, rows, run_id)
SELECT $checksum, _partition_date, count(*), $run_id
FROM _sourced
WHERE _reason IS NULL
GROUP BY _partition_date
