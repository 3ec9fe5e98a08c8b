-- Every prediction names the model version and the feature partition behind it.
CREATE TABLE IF NOT EXISTS {predictions_table} (
    _key VARCHAR NOT NULL,
    _event_time TIMESTAMP NOT NULL,
    _partition_date DATE NOT NULL,
    score DOUBLE NOT NULL,
    model_name VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    mlflow_run_id VARCHAR NOT NULL,
    feature_partition DATE NOT NULL,
    dagster_run_id VARCHAR NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL
);
