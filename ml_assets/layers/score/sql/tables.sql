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
-- Why each prediction is what it is, for audit: one row per prediction, written in the same
-- transaction. Contributions are in the raw model's margin units, before any calibration
-- (`margin_units`: log_odds for a binary model, label for regression): base_margin + the
-- top_contributions + other_contribution = raw_margin. `value` is the input as the model saw
-- it (NULL: missing, or a category unseen in training).
CREATE TABLE IF NOT EXISTS {explanations_table} (
    _key VARCHAR NOT NULL,
    _partition_date DATE NOT NULL,
    model_name VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    margin_units VARCHAR NOT NULL,
    base_margin DOUBLE NOT NULL,
    raw_margin DOUBLE NOT NULL,
    top_contributions STRUCT(rank INTEGER, feature VARCHAR, value VARCHAR, contribution DOUBLE)[] NOT NULL,
    other_contribution DOUBLE NOT NULL,
    dagster_run_id VARCHAR NOT NULL
);
