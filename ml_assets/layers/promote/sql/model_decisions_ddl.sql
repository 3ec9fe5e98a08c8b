-- Append-only audit of every champion decision. Code only ever INSERTs here (DuckDB has no
-- triggers or grants to forbid UPDATE/DELETE, so the guarantee is the API: record_decision).
CREATE SCHEMA IF NOT EXISTS governance;
CREATE SEQUENCE IF NOT EXISTS governance.model_decisions_seq;
CREATE TABLE IF NOT EXISTS governance.model_decisions (
    decision_id BIGINT PRIMARY KEY DEFAULT nextval('governance.model_decisions_seq'),
    decided_at TIMESTAMPTZ NOT NULL,
    dagster_run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    model_name VARCHAR NOT NULL,
    candidate_version VARCHAR,
    previous_champion_version VARCHAR,
    new_champion_version VARCHAR,
    decision VARCHAR NOT NULL CHECK (decision IN ('promoted', 'rejected', 'rollback')),
    reason VARCHAR NOT NULL,
    metrics JSON NOT NULL,
    checks JSON NOT NULL,
    "trigger" VARCHAR NOT NULL,
    code_version VARCHAR NOT NULL
);
