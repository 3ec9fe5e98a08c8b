-- How often each contract rule was broken in a window, with a few offending keys to look at.
SELECT reason, count(*) AS rows, list(_key_text ORDER BY _partition_date, _source_row)[1:5] AS sample_keys
FROM (
    SELECT unnest(_reasons) AS reason, concat_ws('|', {key_columns}) AS _key_text, _partition_date, _source_row
    FROM {schema}.quarantine
    WHERE _partition_date BETWEEN $start AND $end
)
GROUP BY reason
ORDER BY rows DESC, reason
