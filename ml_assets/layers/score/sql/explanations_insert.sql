-- One explanation per scored row: its top-K picks (ranked by |contribution| in numpy) folded
-- into one list in rank order, with feature names and category levels looked up here. A
-- numeric value is shown as DuckDB prints the DOUBLE; NULL stays NULL.
INSERT INTO {explanations_table} BY NAME
SELECT
    r._key,
    CAST(r._partition_date AS DATE) AS _partition_date,
    $model_name AS model_name,
    $model_version AS model_version,
    $method AS method,
    $margin_units AS margin_units,
    r.base_margin,
    r.raw_margin,
    list(
        struct_pack(
            rank := t.rank,
            feature := f.feature,
            value := coalesce(l.level, CAST(nullif(t.value, 'NaN'::DOUBLE) AS VARCHAR)),
            contribution := t.contribution
        )
        ORDER BY t.rank
    ) AS top_contributions,
    r.other_contribution,
    $run_id AS dagster_run_id
FROM _explained_rows r
JOIN _explained_top t ON t.row = r.row
JOIN _explained_features f ON f.feature_index = t.feature_index
LEFT JOIN _explained_levels l ON l.feature_index = t.feature_index AND l.code = t.code
GROUP BY r.row, r._key, r._partition_date, r.base_margin, r.raw_margin, r.other_contribution
