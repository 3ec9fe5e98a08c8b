-- One row per validated row; the feature_columns slot holds the spec's features (DOUBLE or VARCHAR).
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {features_table} (
    _key VARCHAR NOT NULL,
    _event_time TIMESTAMP NOT NULL,
    _partition_date DATE NOT NULL,
    _label DOUBLE,
    _label_known_at TIMESTAMP NOT NULL,
    {feature_columns},
    _max_history_time TIMESTAMP,
    _max_lookup_time TIMESTAMP,
    _featurized_at TIMESTAMPTZ NOT NULL,
    _run_id VARCHAR NOT NULL
);
