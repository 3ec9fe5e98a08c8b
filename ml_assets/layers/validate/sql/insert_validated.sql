INSERT INTO {validated_table} BY NAME
SELECT *, CAST({label} AS DOUBLE) AS _label, concat_ws('|', {key_columns}) AS _key
FROM (
    SELECT {typed_as_names}, _event_time, _partition_date, _source_file, _source_checksum,
           _source_row, $validated_at AS _validated_at, $run_id AS _run_id
    FROM _flagged
    WHERE len(_reasons) = 0
)
