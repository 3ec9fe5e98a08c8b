-- validated: the contract columns typed (slot typed_columns) plus lineage. quarantine: the raw
-- text (slot raw_columns) with the raw lineage and the reasons it broke the contract.
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {validated_table} (
    {typed_columns},
    _event_time TIMESTAMP NOT NULL,
    _partition_date DATE NOT NULL,
    _source_file VARCHAR NOT NULL,
    _source_checksum VARCHAR NOT NULL,
    _source_row BIGINT NOT NULL,
    _validated_at TIMESTAMPTZ NOT NULL,
    _run_id VARCHAR NOT NULL,
    _label DOUBLE,
    _key VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS {quarantine_table} (
    {raw_columns},
    _event_time TIMESTAMP NOT NULL,
    _partition_date DATE NOT NULL,
    _source_file VARCHAR NOT NULL,
    _source_checksum VARCHAR NOT NULL,
    _source_row BIGINT NOT NULL,
    _ingested_at TIMESTAMPTZ NOT NULL,
    _run_id VARCHAR NOT NULL,
    _reasons VARCHAR[] NOT NULL,
    _quarantined_at TIMESTAMPTZ NOT NULL
);
