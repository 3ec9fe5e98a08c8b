-- The bundled flights features as one hand-written SQL file: what defs.yaml declares (calendar
-- parts, columns, delay rates, same-day departure delays) plus its features.sql (lookups). The
-- bare DuckDB benchmark script runs it; the tests check the declared form gives the same values,
-- and exercise the feature SQL contract on it.
--
-- Everything here is known before the scheduled departure (`_event_time`).
--
-- Contract (see ml_assets/layers/features/query.py): one row per validated flight of
-- [$start, $end] with `_key`, the feature columns declared in flights.yaml, and the audit columns
-- `_max_history_time` (latest event time of a labelled flight any rate below used) and
-- `_max_lookup_time` (latest weather observation or departure delay used). `{validated}` holds
-- the days [$start - lookback_days, $end]; `{ref_weather}` and `{ref_planes}` are the lookups.
WITH flights AS (
    SELECT _key, _event_time, _partition_date, _label, carrier, origin, dest, month, distance, tailnum
    FROM {validated}
),
-- Rolling delay rates per carrier, origin, dest and route (origin, dest). A flight's label is
-- known `label_delay_days` after its departure, so a row at time t may only use flights that departed
-- in [t - N days, t - label_delay_days]: the RANGE frame ends there, never at the current row.
-- avg() skips NULL labels (cancelled and diverted flights), so they never count in a rate.
rates AS (
    SELECT _key, _event_time, _partition_date, carrier, origin, dest, month, distance, tailnum,
        avg(_label) OVER carrier_7d AS carrier_delay_rate_7d,
        avg(_label) OVER carrier_28d AS carrier_delay_rate_28d,
        avg(_label) OVER origin_7d AS origin_delay_rate_7d,
        avg(_label) OVER origin_28d AS origin_delay_rate_28d,
        avg(_label) OVER dest_7d AS dest_delay_rate_7d,
        avg(_label) OVER dest_28d AS dest_delay_rate_28d,
        avg(_label) OVER route_7d AS route_delay_rate_7d,
        avg(_label) OVER route_28d AS route_delay_rate_28d,
        -- Each 7-day frame lies inside the 28-day frame of its key: the 28-day maxima bound all.
        greatest(
            max(_event_time) FILTER (WHERE _label IS NOT NULL) OVER carrier_28d,
            max(_event_time) FILTER (WHERE _label IS NOT NULL) OVER origin_28d,
            max(_event_time) FILTER (WHERE _label IS NOT NULL) OVER dest_28d,
            max(_event_time) FILTER (WHERE _label IS NOT NULL) OVER route_28d
        ) AS _max_history_time
    FROM flights
    WINDOW
        carrier_7d AS (PARTITION BY carrier ORDER BY _event_time RANGE BETWEEN
            INTERVAL 7 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING),
        carrier_28d AS (PARTITION BY carrier ORDER BY _event_time RANGE BETWEEN
            INTERVAL 28 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING),
        origin_7d AS (PARTITION BY origin ORDER BY _event_time RANGE BETWEEN
            INTERVAL 7 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING),
        origin_28d AS (PARTITION BY origin ORDER BY _event_time RANGE BETWEEN
            INTERVAL 28 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING),
        dest_7d AS (PARTITION BY dest ORDER BY _event_time RANGE BETWEEN
            INTERVAL 7 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING),
        dest_28d AS (PARTITION BY dest ORDER BY _event_time RANGE BETWEEN
            INTERVAL 28 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING),
        route_7d AS (PARTITION BY origin, dest ORDER BY _event_time RANGE BETWEEN
            INTERVAL 7 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING),
        route_28d AS (PARTITION BY origin, dest ORDER BY _event_time RANGE BETWEEN
            INTERVAL 28 DAYS PRECEDING AND to_days(CAST($label_delay_days AS INTEGER)) PRECEDING)
    -- History rows were only needed inside the frames; emit the window's own days.
    QUALIFY _partition_date BETWEEN $start AND $end
),
-- Hourly weather per airport. year/month/day/hour are New York local time, like `_event_time`.
-- At the November fall-back the local hour 01:00 occurs twice; keep the earlier observation so a
-- departure never sees weather from after it. Values are cast because lookups may load as text.
weather AS (
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
-- Same-day signals: a flight's departure delay is known at its actual departure (scheduled plus
-- the delay), and never before just after its own scheduled time, so no flight reads itself.
-- Each window holds the delays that became known in its last hours: a stream of the run's
-- flights (no value) and of departures (at their known time) per key, in time order.
departures AS (
    SELECT origin, dest, carrier, dep_delay,
           greatest(_event_time + to_minutes(CAST(dep_delay AS BIGINT)),
                    _event_time + INTERVAL 1 MICROSECOND) AS known
    FROM {validated}
    WHERE dep_delay IS NOT NULL
),
by_origin AS (
    SELECT _key,
        avg(dep_delay) OVER h1 AS origin_dep_delay_1h,
        avg(dep_delay) OVER h3 AS origin_dep_delay_3h,
        avg(dep_delay) OVER h24 AS origin_dep_delay_24h,
        count(dep_delay) OVER h1 AS origin_departed_1h,
        count(dep_delay) OVER h3 AS origin_departed_3h,
        max(t) FILTER (WHERE dep_delay IS NOT NULL) OVER h24 AS known
    FROM (SELECT _key, origin, _event_time AS t, CAST(NULL AS DOUBLE) AS dep_delay
          FROM flights WHERE _partition_date BETWEEN $start AND $end
          UNION ALL
          SELECT NULL, origin, known, dep_delay FROM departures)
    WINDOW h1 AS (PARTITION BY origin ORDER BY t RANGE BETWEEN INTERVAL 1 HOURS PRECEDING AND CURRENT ROW),
           h3 AS (PARTITION BY origin ORDER BY t RANGE BETWEEN INTERVAL 3 HOURS PRECEDING AND CURRENT ROW),
           h24 AS (PARTITION BY origin ORDER BY t RANGE BETWEEN INTERVAL 24 HOURS PRECEDING AND CURRENT ROW)
    QUALIFY _key IS NOT NULL
),
by_carrier AS (
    SELECT _key,
        avg(dep_delay) OVER h3 AS carrier_dep_delay_3h,
        max(t) FILTER (WHERE dep_delay IS NOT NULL) OVER h3 AS known
    FROM (SELECT _key, carrier, _event_time AS t, CAST(NULL AS DOUBLE) AS dep_delay
          FROM flights WHERE _partition_date BETWEEN $start AND $end
          UNION ALL
          SELECT NULL, carrier, known, dep_delay FROM departures)
    WINDOW h3 AS (PARTITION BY carrier ORDER BY t RANGE BETWEEN INTERVAL 3 HOURS PRECEDING AND CURRENT ROW)
    QUALIFY _key IS NOT NULL
),
by_carrier_origin AS (
    SELECT _key,
        avg(dep_delay) OVER h3 AS carrier_origin_dep_delay_3h,
        count(dep_delay) OVER h3 AS carrier_origin_departed_3h,
        max(t) FILTER (WHERE dep_delay IS NOT NULL) OVER h3 AS known
    FROM (SELECT _key, carrier, origin, _event_time AS t, CAST(NULL AS DOUBLE) AS dep_delay
          FROM flights WHERE _partition_date BETWEEN $start AND $end
          UNION ALL
          SELECT NULL, carrier, origin, known, dep_delay FROM departures)
    WINDOW h3 AS (PARTITION BY carrier, origin ORDER BY t
                  RANGE BETWEEN INTERVAL 3 HOURS PRECEDING AND CURRENT ROW)
    QUALIFY _key IS NOT NULL
)
SELECT
    r._key,
    hour(r._event_time) AS sched_dep_hour,
    dayname(r._event_time) AS weekday,
    r.month,
    r.carrier,
    r.origin,
    r.dest,
    r.distance,
    year(r._event_time) - TRY_CAST(p.year AS INTEGER) AS plane_age,
    -- The latest observation at or before departure, unless it is more than 6 hours old (the
    -- longest gap in the 2013 record): stale weather is unknown weather, not today's weather.
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.temp END AS temp,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.humid END AS humid,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.wind_speed END AS wind_speed,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.precip END AS precip,
    CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.visib END AS visib,
    r.carrier_delay_rate_7d, r.carrier_delay_rate_28d,
    r.origin_delay_rate_7d, r.origin_delay_rate_28d,
    r.dest_delay_rate_7d, r.dest_delay_rate_28d,
    r.route_delay_rate_7d, r.route_delay_rate_28d,
    o.origin_dep_delay_1h, o.origin_dep_delay_3h, o.origin_dep_delay_24h,
    o.origin_departed_1h, o.origin_departed_3h,
    c.carrier_dep_delay_3h,
    co.carrier_origin_dep_delay_3h, co.carrier_origin_departed_3h,
    r._max_history_time,
    greatest(
        CASE WHEN w.observed_at >= r._event_time - INTERVAL 6 HOURS THEN w.observed_at END,
        o.known, c.known, co.known
    ) AS _max_lookup_time
FROM rates r
ASOF LEFT JOIN weather w ON r.origin = w.origin AND r._event_time >= w.observed_at
LEFT JOIN {ref_planes} p ON p.tailnum = r.tailnum
LEFT JOIN by_origin o ON o._key = r._key
LEFT JOIN by_carrier c ON c._key = r._key
LEFT JOIN by_carrier_origin co ON co._key = r._key
