-- Flights features from the lookups: the plane's age and the weather at departure. The calendar
-- parts, the flight's own columns and the rolling delay rates are declared in defs.yaml.
--
-- Contract (see ml_assets/layers/features/query.py): one row per validated flight of
-- [$start, $end] with `_key`, the feature columns below, and the audit column
-- `_max_lookup_time` (time of the weather observation used). `{validated}` holds the days
-- [$start - lookback_days, $end]; `{ref_weather}` and `{ref_planes}` are the lookups.
--
-- Hourly weather per airport. year/month/day/hour are New York local time, like `_event_time`.
-- At the November fall-back the local hour 01:00 occurs twice; keep the earlier observation so a
-- departure never sees weather from after it. Values are cast because lookups may load as text.
WITH weather AS (
    SELECT origin,
           make_timestamp(CAST(year AS BIGINT), CAST(month AS BIGINT), CAST(day AS BIGINT),
                          CAST(hour AS BIGINT), 0, 0.0) AS observed_at,
           TRY_CAST(temp AS DOUBLE) AS temp,
           TRY_CAST(humid AS DOUBLE) AS humid,
           TRY_CAST(wind_speed AS DOUBLE) AS wind_speed,
           TRY_CAST(precip AS DOUBLE) AS precip,
           TRY_CAST(visib AS DOUBLE) AS visib
    FROM {ref_weather}
    WHERE TRY_CAST(hour AS BIGINT) IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY origin, observed_at ORDER BY time_hour) = 1
),
flights AS (
    SELECT _key, _event_time, origin, tailnum
    FROM {validated}
    WHERE _partition_date BETWEEN $start AND $end
)
SELECT
    r._key,
    year(r._event_time) - TRY_CAST(p.year AS INTEGER) AS plane_age,
    -- The latest observation at or before departure, unless it is more than 6 hours old (the
    -- longest gap in the 2013 record): stale weather is unknown weather, not today's weather.
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.temp END AS temp,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.humid END AS humid,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.wind_speed END AS wind_speed,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.precip END AS precip,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.visib END AS visib,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.observed_at END
        AS _max_lookup_time
FROM flights r
ASOF LEFT JOIN weather w ON r.origin = w.origin AND r._event_time >= w.observed_at
LEFT JOIN {ref_planes} p ON p.tailnum = r.tailnum
