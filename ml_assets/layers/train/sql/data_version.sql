-- A fingerprint of the training set's content: each row (every column, names included, as JSON)
-- is hashed with MD5, the row hashes are sorted, and SHA-256 is taken over their concatenation.
-- Sorting makes it independent of physical row order; any changed value, column, split
-- assignment, added or removed row changes it. Stable for a given DuckDB version.
SELECT sha256(coalesce(string_agg(h, '' ORDER BY h), ''))
FROM (SELECT md5(CAST(to_json(t) AS VARCHAR)) AS h FROM {training_set} AS t)
