-- One row per shadow trial: a candidate that passed the offline gates, serving in shadow beside
-- the champion it would replace until the request log holds enough rows to judge it. Appended
-- before the trial's registry tag is written (the decision's own write-ahead row comes later,
-- in model_decisions, when the trial is judged). No key or CHECK: the same SQL serves DuckLake.
CREATE SCHEMA IF NOT EXISTS governance;
CREATE TABLE IF NOT EXISTS governance.shadow_trials (
    started_at TIMESTAMPTZ NOT NULL,
    dataset VARCHAR NOT NULL,
    model_name VARCHAR NOT NULL,
    candidate_version VARCHAR NOT NULL,
    champion_version VARCHAR NOT NULL,
    "trigger" VARCHAR NOT NULL,
    dagster_run_id VARCHAR NOT NULL
);
