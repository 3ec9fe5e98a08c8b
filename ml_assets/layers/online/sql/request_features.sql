-- A request's feature rows in one statement (DuckDB plans a statement for ~2 ms whatever its
-- size, so one statement instead of three): its typed values bound as one list per column, the
-- validated columns, the row features and entities, and each hand-written SQL file's
-- per-request query joined by key (request_validated.sql and request_rows.sql inside); the
-- files' start/end parameters read the request's own partition dates.
WITH _request_typed AS (
    SELECT {typed_params}
),
_request_validated AS (
{validated}
),
_request_rows AS (
{rows}
)
SELECT r.*{sql_features}
FROM _request_rows AS r{sql_joins}
ORDER BY r._row
