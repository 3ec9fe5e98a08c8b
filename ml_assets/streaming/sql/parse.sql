-- One polled batch (`_stream_batch`: topic, partition, offset, key and payload as bytes), parsed
-- in one vectorized pass: every contract field as text (like raw), the event time as a naive
-- timestamp in the dataset's zone and its day, or the reason the message cannot be placed.
-- Offset-carrying times are converted to $timezone; naive ones are taken as already in it.
-- Each payload is parsed once, into a struct of text fields: `->>` per field re-parsed the
-- document for each (2.2 s against 0.3 s for 30,000 flights rows). Valid JSON that starts with a
-- brace is an object, which spares a second parse (`json_valid` + `json_type`) on good messages.
CREATE OR REPLACE TEMP TABLE _stream_parsed AS
WITH decoded AS (
    SELECT *, TRY(decode(_payload)) AS _text, TRY(decode(_key_bytes)) AS _key
    FROM _stream_batch
),
objects AS (
    SELECT *, TRY(json_transform(_text, {struct_type})) AS _obj,
           starts_with(ltrim(_text), '{{') AS _braced
    FROM decoded
),
timed AS (
    SELECT *, CASE WHEN _braced THEN _obj[{event_time_key}] END AS _time_text FROM objects
),
parsed AS (
    SELECT *,
        CASE WHEN regexp_matches(_time_text, '\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$')
             THEN timezone($timezone, TRY_CAST(_time_text AS TIMESTAMPTZ))
             ELSE TRY_CAST(_time_text AS TIMESTAMP) END AS _event_time
    FROM timed
)
SELECT {fields},
    _event_time, CAST(_event_time AS DATE) AS _partition_date,
    _topic, _partition, _offset, _key, _payload,
    CASE
        WHEN _obj IS NULL AND (_text IS NULL OR NOT json_valid(_text)) THEN 'not_json'
        WHEN _obj IS NULL OR NOT _braced THEN 'not_an_object'
        WHEN _time_text IS NULL OR _time_text = '' THEN 'no_event_time'
        WHEN _event_time IS NULL THEN 'unparseable_event_time: ' || left(_time_text, 100)
        WHEN CAST(_event_time AS DATE) NOT BETWEEN $first AND $last
            THEN 'outside_partitions: ' || strftime(_event_time, '%Y-%m-%d %H:%M:%S') || ' '
                 || $timezone || ' not in [' || $first || ', ' || $last || ']'
    END AS _reason
FROM parsed
