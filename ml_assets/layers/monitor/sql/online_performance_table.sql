-- online_performance: per day and served model version, the online rows once their labels
-- arrived (realized metric), how the day's online scores are distributed against the batch
-- predictions of the same version, and how many of its keys batch scoring scored alike.
CREATE TABLE IF NOT EXISTS {performance_table} (
    day DATE NOT NULL,
    model_version VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    labelled_rows BIGINT NOT NULL,
    metric VARCHAR NOT NULL,
    metric_value DOUBLE,
    batch_matched_rows BIGINT NOT NULL,
    batch_score_max_abs_diff DOUBLE,
    reference_rows BIGINT NOT NULL,
    score_drift_method VARCHAR,
    score_drift_score DOUBLE,
    score_drifted BOOLEAN,
    dagster_run_id VARCHAR NOT NULL
);
