-- Every prediction names the model version and the feature partition behind it. A binary
-- version's `decision` is `score >= decision_threshold`, the threshold stored with the version
-- (NULL for regression).
CREATE TABLE IF NOT EXISTS {predictions_table} (
    _key VARCHAR NOT NULL,
    _event_time TIMESTAMP NOT NULL,
    _partition_date DATE NOT NULL,
    score DOUBLE NOT NULL,
    decision BOOLEAN,
    decision_threshold DOUBLE,
    model_name VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    mlflow_run_id VARCHAR NOT NULL,
    feature_partition DATE NOT NULL,
    dagster_run_id VARCHAR NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL
);
-- A table made before decisions were scored gains the columns (NULL for its old rows).
ALTER TABLE {predictions_table} ADD COLUMN IF NOT EXISTS decision BOOLEAN;
ALTER TABLE {predictions_table} ADD COLUMN IF NOT EXISTS decision_threshold DOUBLE;
