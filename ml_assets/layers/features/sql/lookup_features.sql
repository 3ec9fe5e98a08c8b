-- The declared lookup features (features/lookups.py): each row of [$start, $end] joined to the
-- row each lookup finds, as of its event for a timed lookup; `_max_lookup_time` is the latest
-- time of a timed row used, which the leakage check holds at or before the event.
WITH {tables},
_rows AS (
    SELECT _key, _event_time{keys}
    FROM {{validated}}
    WHERE _partition_date BETWEEN $start AND $end
)
SELECT r._key{features}{audit}
FROM _rows AS r{joins}
