-- Per source file: rows in the file (counted when it was registered, independently of placement)
-- against rows placed in a day + rows rejected with a reason; rows of the file in raw; and, over
-- the days judged ([$start, $end], or only the days raw holds when $raw_days_only), how far raw's
-- rows of the file differ from the rows the file places on each day.
WITH placed AS (
    SELECT checksum, sum(rows) AS n FROM {file_days_table} GROUP BY checksum
),
rejected AS (
    SELECT _source_checksum AS checksum, count(*) AS n FROM {rejected_table} GROUP BY ALL
),
in_raw AS (
    SELECT _source_checksum AS checksum, count(*) AS n FROM {raw_table} GROUP BY ALL
),
raw_days AS (
    SELECT DISTINCT _partition_date AS day FROM {raw_table}
    WHERE _partition_date BETWEEN $start AND $end
),
expected AS (
    SELECT checksum, day, rows FROM {file_days_table}
    WHERE day BETWEEN $start AND $end
      AND (NOT $raw_days_only OR day IN (SELECT day FROM raw_days))
),
actual AS (
    SELECT _source_checksum AS checksum, _partition_date AS day, count(*) AS rows
    FROM {raw_table} WHERE _partition_date BETWEEN $start AND $end GROUP BY ALL
),
per_day AS (
    SELECT checksum, day, coalesce(e.rows, 0) AS expected, coalesce(a.rows, 0) AS actual
    FROM expected e FULL JOIN actual a USING (checksum, day)
),
mismatch AS (
    SELECT checksum, sum(abs(expected - actual)) AS n,
           list(strftime(day, '%Y-%m-%d') ORDER BY day) FILTER (WHERE expected <> actual) AS days
    FROM per_day GROUP BY checksum
),
files AS (
    SELECT checksum FROM placed UNION SELECT checksum FROM rejected UNION SELECT checksum FROM mismatch
)
SELECT files.checksum, f.path, f.kind, f.rows, coalesce(placed.n, 0), coalesce(rejected.n, 0),
       coalesce(in_raw.n, 0), coalesce(mismatch.n, 0), coalesce(mismatch.days, [])
FROM files
LEFT JOIN {source_files_table} f USING (checksum)
LEFT JOIN placed USING (checksum)
LEFT JOIN rejected USING (checksum)
LEFT JOIN in_raw USING (checksum)
LEFT JOIN mismatch USING (checksum)
ORDER BY f.registered_at NULLS FIRST, files.checksum
