-- One stream of the online store: per entity, the time and value of every past row its windows
-- aggregate, from the validated rows of the snapshot's history days (see online/schema.py).
-- `_t` is when the value counts (its event, or when it became known), `_lag` how long after
-- its event that was (microseconds), `_key` the row, so a request for that row can leave it out.
SELECT {entity} AS _entity, _key, epoch_us({time}) AS _t,
       epoch_us({time}) - epoch_us(_event_time) AS _lag, {value} AS _v
FROM (
    SELECT *, {known} AS _known
    FROM {validated_table}
    WHERE _partition_date BETWEEN $history_start AND $as_of
)
WHERE {present}
ORDER BY _entity, _t, _key
