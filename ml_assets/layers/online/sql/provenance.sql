-- The lineage of every batch prediction of the snapshot's days, for serving's provenance
-- endpoint (which must never open the warehouse): prediction -> feature row -> validated row
-- -> source file. The model's MLflow lineage is read from the registry at request time.
SELECT p._key, p._partition_date, p._event_time, p.score, p.decision, p.decision_threshold,
       p.model_name, p.model_version, p.mlflow_run_id, p.feature_partition,
       p.dagster_run_id AS prediction_dagster_run_id, p.scored_at,
       f._run_id AS features_dagster_run_id, f._featurized_at,
       v._source_file, v._source_checksum, v._source_row,
       v._run_id AS validated_dagster_run_id, v._validated_at,
       s.path AS source_path
FROM {predictions_table} p
LEFT JOIN {features_table} f ON f._key = p._key AND f._partition_date = p.feature_partition
LEFT JOIN {validated_table} v ON v._key = p._key AND v._partition_date = p.feature_partition
LEFT JOIN {source_files_table} s ON s.checksum = v._source_checksum
WHERE p._partition_date BETWEEN $history_start AND $as_of
