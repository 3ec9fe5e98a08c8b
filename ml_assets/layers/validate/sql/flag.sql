-- Every raw row of the window, with its contract columns cast to their types ("<col>__typed")
-- and the list of contract rules it breaks. Empty list: validated. Otherwise: quarantine.
CREATE OR REPLACE TEMP TABLE _flagged AS
WITH typed AS (
    SELECT r.*, {typed_columns}
    FROM {raw_table} AS r
    WHERE r._partition_date BETWEEN $start AND $end
)
SELECT *, list_filter([{reason_exprs}], lambda x: x IS NOT NULL) AS _reasons
FROM typed
