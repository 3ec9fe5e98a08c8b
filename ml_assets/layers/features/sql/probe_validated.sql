-- The probe day's history with every label not yet known on that day replaced by a value no
-- real label has (NULL and 0/1 become 1000/1001/1000): features that honour the label delay
-- cannot change, features that peek at those labels almost surely do.
CREATE OR REPLACE TEMP TABLE {probe_table} AS
SELECT * REPLACE (
    CASE WHEN _event_time >= $cutoff THEN coalesce(1.0 - _label, 0.0) + 1000.0 ELSE _label END
        AS _label
)
FROM {validated_table}
WHERE _partition_date BETWEEN $history_start AND $end
