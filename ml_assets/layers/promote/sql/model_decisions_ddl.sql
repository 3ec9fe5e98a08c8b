-- Append-only audit of every champion decision. Code only ever INSERTs here (DuckDB has no
-- triggers or grants to forbid UPDATE/DELETE, so the guarantee is the API: record_decision).
-- decision_id is numbered by insert_decision.sql from governance.decision_ids, not by a
-- sequence: DuckLake has no sequences, and the same SQL serves both warehouses. On DuckLake the
-- PRIMARY KEY and the CHECK are dropped (it has neither); `audit.py` checks the decision kind
-- before every insert.
CREATE SCHEMA IF NOT EXISTS governance;
CREATE TABLE IF NOT EXISTS governance.model_decisions (
    decision_id BIGINT PRIMARY KEY,
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

-- The last decision_id handed out. Every decision UPDATEs it in its own transaction: two
-- DuckLake writers appending decisions at once would not conflict (appends never do) and could
-- number two rows alike; two UPDATEs of this table do conflict, so one of them is replayed and
-- takes the next number. Seeded once from the audit rows a warehouse already holds.
CREATE TABLE IF NOT EXISTS governance.decision_ids (last_id BIGINT NOT NULL);
INSERT INTO governance.decision_ids
SELECT coalesce(max(decision_id), 0) FROM governance.model_decisions
WHERE NOT EXISTS (SELECT 1 FROM governance.decision_ids);
