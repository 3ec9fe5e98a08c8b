-- Per day of [$start, $end]: request counts, latency (per request, not per row: a batch's rows
-- share one latency), mean score, and how often the shadow model decided as the served one.
DELETE FROM {summary_table} WHERE day BETWEEN $start AND $end;
INSERT INTO {summary_table} BY NAME
WITH days AS (
    SELECT CAST(d AS DATE) AS day
    FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) t(d)
),
rows AS (
    SELECT * FROM {requests_table} WHERE _partition_date BETWEEN $start AND $end
),
per_request AS (
    SELECT _partition_date AS day, request_id, any_value(latency_ms) AS latency_ms
    FROM rows GROUP BY ALL
),
latency AS (
    SELECT day, count(*) AS requests,
           quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
           quantile_cont(latency_ms, 0.99) AS latency_p99_ms,
           max(latency_ms) AS latency_max_ms
    FROM per_request GROUP BY day
),
scored AS (
    SELECT _partition_date AS day,
           count(*) AS rows,
           count(*) FILTER (WHERE served_by = 'canary') AS canary_rows,
           count(*) FILTER (WHERE canary_fallback) AS canary_fallbacks,
           avg(score) AS score_mean,
           count(shadow_score) AS shadow_rows,
           avg(CAST(shadow_agree AS DOUBLE)) AS shadow_agreement,
           avg(shadow_score) AS shadow_score_mean,
           avg(abs(shadow_score - score)) AS shadow_score_mean_abs_diff,
           list_sort(list_distinct(list(model_version))) AS model_versions
    FROM rows GROUP BY ALL
)
SELECT d.day,
       coalesce(l.requests, 0) AS requests,
       coalesce(s.rows, 0) AS rows,
       coalesce(s.canary_rows, 0) AS canary_rows,
       coalesce(s.canary_fallbacks, 0) AS canary_fallbacks,
       l.latency_p50_ms, l.latency_p99_ms, l.latency_max_ms,
       s.score_mean,
       coalesce(s.shadow_rows, 0) AS shadow_rows,
       s.shadow_agreement, s.shadow_score_mean, s.shadow_score_mean_abs_diff,
       coalesce(s.model_versions, CAST([] AS VARCHAR[])) AS model_versions,
       $run_id AS dagster_run_id
FROM days d
LEFT JOIN latency l USING (day)
LEFT JOIN scored s USING (day);
