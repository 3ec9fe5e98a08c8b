-- The stream ledger: valid messages (every field as text, like raw), bad messages whole, and the
-- next offset per topic partition. All three are written in one transaction per batch.
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {rows_table} (
    {columns},
    _event_time TIMESTAMP NOT NULL,
    _partition_date DATE NOT NULL,
    _topic VARCHAR NOT NULL,
    _partition INTEGER NOT NULL,
    _offset BIGINT NOT NULL,
    _key VARCHAR,
    _ingested_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (_topic, _partition, _offset)
);

CREATE TABLE IF NOT EXISTS {quarantine_table} (
    _topic VARCHAR NOT NULL,
    _partition INTEGER NOT NULL,
    _offset BIGINT NOT NULL,
    _key VARCHAR,
    _payload BLOB,
    _reason VARCHAR NOT NULL,
    _ingested_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (_topic, _partition, _offset)
);

CREATE TABLE IF NOT EXISTS {offsets_table} (
    topic VARCHAR NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, "partition")
);
