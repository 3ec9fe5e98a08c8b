-- What the feature SQL reads as its validated rows for a request: its typed rows with the validated layer's derived
-- columns. The label is unknown at request time (NULL), so no window can read it.
SELECT *, CAST(_event_time AS DATE) AS _partition_date, CAST(NULL AS DOUBLE) AS _label,
       concat_ws('|', {key_columns}) AS _key
FROM (SELECT *, {event_time} AS _event_time FROM _request_typed)
