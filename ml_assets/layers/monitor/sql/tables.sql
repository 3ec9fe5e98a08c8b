-- drift: one row per day and monitored column (features and the score).
CREATE TABLE IF NOT EXISTS {drift_table} (
    day DATE NOT NULL,
    feature VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    score DOUBLE,
    threshold DOUBLE,
    drifted BOOLEAN NOT NULL,
    is_prediction BOOLEAN NOT NULL,
    share_drifted DOUBLE NOT NULL,
    reference_start DATE NOT NULL,
    reference_end DATE NOT NULL,
    model_version VARCHAR NOT NULL,
    dagster_run_id VARCHAR NOT NULL
);

-- performance: one row per day, the realized metric once labels arrived.
CREATE TABLE IF NOT EXISTS {performance_table} (
    day DATE NOT NULL,
    labelled_rows BIGINT NOT NULL,
    trailing_rows BIGINT NOT NULL,
    metric VARCHAR NOT NULL,
    daily_value DOUBLE,
    trailing_value DOUBLE,
    reference_value DOUBLE NOT NULL,
    degraded BOOLEAN NOT NULL,
    model_versions VARCHAR[] NOT NULL,
    dagster_run_id VARCHAR NOT NULL
);
-- The champion's holdout metric and the day's degradation bound (added after the first release).
ALTER TABLE {performance_table} ADD COLUMN IF NOT EXISTS holdout_value DOUBLE;
ALTER TABLE {performance_table} ADD COLUMN IF NOT EXISTS bound DOUBLE;
