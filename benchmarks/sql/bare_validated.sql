-- The bare script's validated table: a typed read, the contract as one WHERE clause, the first
-- row of each key, and the event time, partition date, label and key the features need.
CREATE TABLE validated AS
WITH src AS ({typed_read}),
timed AS (SELECT *, CAST({event_time} AS TIMESTAMP) AS _event_time FROM src)
SELECT * EXCLUDE (_row), CAST(_event_time AS DATE) AS _partition_date,
       CAST({label} AS DOUBLE) AS _label, concat_ws('|', {key_columns}) AS _key
FROM timed
WHERE {contract}
  AND CAST(_event_time AS DATE) BETWEEN $start AND $end
QUALIFY row_number() OVER (PARTITION BY {key_columns} ORDER BY _row) = 1
