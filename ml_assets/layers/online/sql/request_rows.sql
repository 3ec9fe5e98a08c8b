-- Per request row: its event time (microseconds), one entity text per stream, and the
-- features read from the row itself (declared `column` and `calendar` features).
SELECT _row, _key, _event_time, _partition_date, epoch_us(_event_time) AS _t{entities}{row_features}
FROM _request_validated
ORDER BY _row
