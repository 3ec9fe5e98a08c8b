-- Rows whose features used a label that was not yet known at the event time, or reference data
-- stamped after it. A label is known `label_delay_days` after its own event.
WITH audited AS (
    SELECT _key, _event_time, _max_history_time, _max_lookup_time,
           coalesce(_max_history_time > _event_time - to_days(CAST($label_delay_days AS INTEGER)), FALSE)
               OR coalesce(_max_lookup_time > _event_time, FALSE) AS leaky
    FROM {features_table}
    WHERE _partition_date BETWEEN $start AND $end
)
SELECT count(*) AS rows,
       count(_max_history_time) AS rows_with_history,
       count(*) FILTER (WHERE leaky) AS leaky_rows,
       coalesce(list(_key ORDER BY _key) FILTER (WHERE leaky), [])[1:10] AS sample_keys,
       min(_event_time - _max_history_time) AS closest_history_gap
FROM audited
