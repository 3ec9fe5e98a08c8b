-- Per topic partition of a Kafka source: messages in the ledger (rows + quarantine), offsets
-- stored in both tables (must be 0), offsets past the stored position (must be 0), and, over
-- the days judged, ledger rows missing from raw and raw rows not in the ledger, and, on every
-- day, offsets raw holds more than once (a write outside its window); all must be 0.
WITH ledger AS (
    SELECT _topic, _partition, _offset, _partition_date, 'row' AS kind FROM {stream_rows_table}
    UNION ALL
    SELECT _topic, _partition, _offset, NULL, 'quarantine' FROM {stream_quarantine_table}
),
per_partition AS (
    SELECT _topic, _partition, count(*) FILTER (WHERE kind = 'row') AS rows,
           count(*) FILTER (WHERE kind = 'quarantine') AS quarantined,
           count(*) - count(DISTINCT _offset) AS in_both, max(_offset) AS last_offset
    FROM ledger GROUP BY ALL
),
expected AS (
    SELECT 'kafka:' || _topic || ':' || _partition AS checksum, _offset, _partition_date AS day
    FROM {stream_rows_table} WHERE _partition_date BETWEEN $start AND $end
),
actual AS (
    SELECT _source_checksum AS checksum, _source_row AS _offset, _partition_date AS day
    FROM {raw_table}
    WHERE _partition_date BETWEEN $start AND $end AND _source_checksum LIKE 'kafka:%'
),
twice AS (
    SELECT checksum, sum(n - 1) AS n FROM (
        SELECT _source_checksum AS checksum, _source_row, count(*) AS n FROM {raw_table}
        WHERE _source_checksum LIKE 'kafka:%' GROUP BY ALL HAVING count(*) > 1
    ) GROUP BY ALL
),
missing AS (
    SELECT checksum, count(*) AS n, list(DISTINCT strftime(day, '%Y-%m-%d')) AS days
    FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM actual) GROUP BY ALL
),
extra AS (
    SELECT checksum, count(*) AS n, list(DISTINCT strftime(day, '%Y-%m-%d')) AS days
    FROM (SELECT * FROM actual EXCEPT ALL SELECT * FROM expected) GROUP BY ALL
)
SELECT p._topic, p._partition, p.rows, p.quarantined, p.in_both,
       o.next_offset, greatest(p.last_offset + 1 - coalesce(o.next_offset, 0), 0) AS past_position,
       coalesce(m.n, 0) AS missing_from_raw, coalesce(e.n, 0) AS extra_in_raw,
       coalesce(t.n, 0) AS duplicated_in_raw,
       list_distinct(coalesce(m.days, []) || coalesce(e.days, [])) AS days_off
FROM per_partition p
LEFT JOIN {stream_offsets_table} o ON o.topic = p._topic AND o."partition" = p._partition
LEFT JOIN missing m ON m.checksum = 'kafka:' || p._topic || ':' || p._partition
LEFT JOIN extra e ON e.checksum = 'kafka:' || p._topic || ':' || p._partition
LEFT JOIN twice t ON t.checksum = 'kafka:' || p._topic || ':' || p._partition
ORDER BY ALL
