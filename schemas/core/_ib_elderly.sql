CREATE OR REPLACE TEMP TABLE _ib_elderly AS
WITH bounds AS (  -- no birth date anywhere: the lowest age a 高龄补贴 roster row (80+) or its 出生年月 allows
    SELECT person_key,
           greatest(80, max(year($day::DATE) - try_cast(left(declared_birth_month, 4) AS INTEGER)
               - (month($day::DATE) <= try_cast(right(declared_birth_month, 2) AS INTEGER))::INTEGER))
               ::INTEGER AS age_at_least
    FROM core.roster_entries
    WHERE programme_code = 'senior' AND person_key IS NOT NULL AND roster_month <= $month_first
    GROUP BY person_key
),
judged AS (
    SELECT p.*, CASE WHEN p.age IS NULL THEN b.age_at_least END AS age_at_least,
           p.is_living_alone OR p.is_tagged_living_alone AS alone,
           -- living alone is a finding only when the registry places the person in a house it knows
           NOT (p.is_living_alone OR p.is_tagged_living_alone) AND p.place_source IS DISTINCT FROM 'registry'
               AS alone_unknown
    FROM core.persons p LEFT JOIN bounds b ON b.person_key = p.person_key
    WHERE p.registry_status = 1
),
elderly AS (
    -- Nobody drops out of sight: a person whose age (or living alone) no source settles, but who meets
    -- every other condition, is listed with the reason, for the grid worker to check.
    SELECT *, concat_ws('；',
               CASE WHEN age IS NULL AND coalesce(age_at_least, 0) < $elderly_age THEN
                   '年龄不详：' || CASE WHEN age_at_least IS NOT NULL
                                      THEN '高龄补贴名册只说明至少' || age_at_least || '岁'
                                      ELSE '各系统均无出生日期' END
                   || CASE WHEN is_tagged_living_alone THEN '（有独居老人标签）' ELSE '' END END,
               CASE WHEN alone_unknown THEN '是否独居不详：户籍未登记其住房' END) AS check_reason
    FROM judged
    WHERE (alone OR alone_unknown) AND (age >= $elderly_age OR age IS NULL)
),
cards AS (SELECT c.person_key, c.holder_id FROM core.cardholders c JOIN elderly e USING (person_key)),
meters AS (
    SELECT e.person_key, d.device_id FROM elderly e
    JOIN core.devices d ON d.device_type = 'water_meter' AND d.house_key = e.house_key
),
-- The events of the window: valid clocks only, happened and delivered by T (duplicates were dropped when
-- stored). Read twice, once per kind, each joined with the population's few cards or meters: DuckDB then
-- filters each scan by the join's keys, where one scan filtered by (kind and card) OR (kind and meter)
-- probed every event of the street against both lists (docs/performance.md, "The build and reconcile
-- outside match").
door AS (
    SELECT c.person_key, max(v.ts_ms) AS last_ms
    FROM core.device_events v JOIN cards c ON c.holder_id = v.holder_id
    WHERE v.event_type = 'access_granted' AND v.day >= $lookback_day AND v.clock_ok AND v.ts_ms <= $t_ms
      AND v.received_by <= $as_of
    GROUP BY c.person_key
),
readings AS (
    SELECT DISTINCT m.person_key, m.device_id, v.ts_ms, v.reading
    FROM core.device_events v JOIN meters m ON m.device_id = v.device_id
    WHERE v.event_type = 'meter_reading' AND v.reading IS NOT NULL AND v.day >= $lookback_day AND v.clock_ok
      AND v.ts_ms <= $t_ms AND v.received_by <= $as_of
),
series AS (
    SELECT *, lag(reading) OVER (PARTITION BY person_key, device_id ORDER BY ts_ms, reading) AS previous
    FROM readings
),
per_meter AS (
    SELECT person_key, device_id, max(ts_ms) FILTER (WHERE reading > previous) AS last_rise_ms,
           coalesce(max(reading) FILTER (WHERE ts_ms > $ws_ms) > coalesce(
               arg_max(reading, (ts_ms, reading)) FILTER (WHERE ts_ms <= $ws_ms),
               arg_min(reading, (ts_ms, reading)) FILTER (WHERE ts_ms > $ws_ms)), false) AS rose
    FROM series GROUP BY person_key, device_id
),
water AS (SELECT person_key, max(last_rise_ms) AS last_ms, bool_or(rose) AS rose FROM per_meter GROUP BY 1)
SELECT e.person_key, e.community_code, e.community_name, e.estate_code, e.estate_name, e.building, e.unit,
       e.room,
       CASE WHEN e.building IS NOT NULL THEN coalesce(e.estate_name, '') || e.building || '栋'
            || coalesce(e.unit || '单元', '') || coalesce(e.room || '室', '') END AS address,
       e.age, e.age_at_least, nullif(e.check_reason, '') AS check_reason,
       (SELECT count(*) FROM cards c WHERE c.person_key = e.person_key)::INTEGER AS door_cards,
       EXISTS (SELECT 1 FROM meters m WHERE m.person_key = e.person_key) AS has_water_meter,
       (SELECT count(*) FROM core.cardholders c LEFT JOIN core.persons o ON o.person_key = c.person_key
        WHERE c.house_key = e.house_key AND NOT coalesce(o.in_registry, false))::INTEGER AS unregistered_cards_at_home,
       door.last_ms AS door_ms, water.last_ms AS water_ms,
       coalesce(door.last_ms > $ws_ms, false) OR coalesce(water.rose, false) AS active
FROM elderly e
LEFT JOIN door ON door.person_key = e.person_key
LEFT JOIN water ON water.person_key = e.person_key
