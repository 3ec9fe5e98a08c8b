-- online_requests: one row per predicted request row, as the service logged it (log.py).
CREATE TABLE IF NOT EXISTS {requests_table} (
    _partition_date DATE NOT NULL,
    request_id VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    _key VARCHAR NOT NULL,
    _event_time TIMESTAMP,
    model_name VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    served_by VARCHAR NOT NULL,
    canary_fallback BOOLEAN NOT NULL,
    fields VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    decision BOOLEAN,
    decision_threshold DOUBLE,
    latency_ms DOUBLE NOT NULL,
    request_rows BIGINT NOT NULL,
    shadow_model_version VARCHAR,
    shadow_score DOUBLE,
    shadow_decision BOOLEAN,
    shadow_agree BOOLEAN,
    _source_file VARCHAR NOT NULL,
    dagster_run_id VARCHAR NOT NULL,
    _ingested_at TIMESTAMPTZ NOT NULL
);

-- online_summary: one row per day, whether or not requests came.
CREATE TABLE IF NOT EXISTS {summary_table} (
    day DATE NOT NULL,
    requests BIGINT NOT NULL,
    rows BIGINT NOT NULL,
    canary_rows BIGINT NOT NULL,
    canary_fallbacks BIGINT NOT NULL,
    latency_p50_ms DOUBLE,
    latency_p99_ms DOUBLE,
    latency_max_ms DOUBLE,
    score_mean DOUBLE,
    shadow_rows BIGINT NOT NULL,
    shadow_agreement DOUBLE,
    shadow_score_mean DOUBLE,
    shadow_score_mean_abs_diff DOUBLE,
    model_versions VARCHAR[] NOT NULL,
    dagster_run_id VARCHAR NOT NULL
);
