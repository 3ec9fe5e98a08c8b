-- Per request row: its event time (microseconds), one entity text per stream, and the
-- features read from the row itself (declared `column` and `calendar` features). Unordered:
-- request_features.sql orders the answer by `_row`.
SELECT _row, _key, _event_time, _partition_date, epoch_us(_event_time) AS _t{entities}{row_features}
FROM _request_validated
