-- A request's rows as the validate layer types them: every contract column cast from its text
-- ("<col>__typed" -> "<col>") and the contract rules it breaks, with the quarantine's reason
-- codes (`type:day`, `range:day`, `allowed:carrier`, `null:origin`).
CREATE TEMP TABLE _request_typed AS
WITH typed AS (
    SELECT r.*, {typed_columns}
    FROM _request_raw AS r
),
flagged AS (
    SELECT *, list_filter([{reason_exprs}], lambda x: x IS NOT NULL) AS _reasons
    FROM typed
)
SELECT _row, _reasons, {typed_as_names}
FROM flagged
