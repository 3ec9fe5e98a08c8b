-- The raw layer's tables; the raw_columns slot is every contract column as VARCHAR (raw keeps text).
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {raw_table} (
    {raw_columns},
    _event_time TIMESTAMP NOT NULL,
    _partition_date DATE NOT NULL,
    _source_file VARCHAR NOT NULL,
    _source_checksum VARCHAR NOT NULL,
    _source_row BIGINT NOT NULL,
    _ingested_at TIMESTAMPTZ NOT NULL,
    _run_id VARCHAR NOT NULL
);

-- Every file ever ingested, so a partition can be rebuilt from the same bytes.
CREATE TABLE IF NOT EXISTS {source_files_table} (
    checksum VARCHAR PRIMARY KEY,
    path VARCHAR NOT NULL,
    archived_path VARCHAR,
    kind VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    first_date DATE NOT NULL,
    last_date DATE NOT NULL,
    extra_columns VARCHAR[],
    registered_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR NOT NULL
);

-- Source rows that fit no partition (no event time, an unparseable one, a day outside the
-- partitions), every column as read, with the reason. Keyed by source file, not by day: a row
-- with no day has no partition to live in. Rewritten whole for a file whenever a run reads it.
CREATE TABLE IF NOT EXISTS {rejected_table} (
    {raw_columns},
    _event_time TIMESTAMP,
    _source_file VARCHAR NOT NULL,
    _source_checksum VARCHAR NOT NULL,
    _source_row BIGINT NOT NULL,
    _reason VARCHAR NOT NULL,
    _ingested_at TIMESTAMPTZ NOT NULL,
    _run_id VARCHAR NOT NULL
);

-- Where each source file's placed rows belong: rows per partition day. Rewritten with the file's
-- rejected rows; raw's `source_rows_accounted` check holds raw and rejected_rows against it.
CREATE TABLE IF NOT EXISTS {file_days_table} (
    checksum VARCHAR NOT NULL,
    day DATE NOT NULL,
    rows BIGINT NOT NULL,
    run_id VARCHAR NOT NULL
);
