-- One declared lookup join's rows (features/lookups.py): its key as text, its time (NULL for a
-- join on the key alone) and each lookup feature's value. Rows with a NULL key part match
-- nothing and are dropped; of the rows with one key and time, the first by `first_by` (then by
-- the values, so the choice never depends on scan order) is the one used.
SELECT {key} AS _lk, {time} AS _lt{values}
FROM {table}
WHERE {keep}
QUALIFY row_number() OVER (PARTITION BY _lk, _lt ORDER BY {order}) = 1
