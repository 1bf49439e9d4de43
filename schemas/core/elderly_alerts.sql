CREATE OR REPLACE TABLE marts.elderly_alerts AS
SELECT person_key, community_code, community_name AS community, estate_name, building, unit, room, address, age,
       age_at_least, check_reason,
       make_timestamptz(door_ms * 1000) AS last_door_access_at, make_timestamptz(water_ms * 1000) AS last_water_use_at,
       round(($t_ms - greatest(door_ms, water_ms)) / {hour_ms}, 1)::DECIMAL(10, 1) AS hours_silent,
       door_cards, has_water_meter
FROM _ib_elderly
WHERE (door_cards > 0 OR has_water_meter) AND NOT active
ORDER BY hours_silent DESC NULLS FIRST, person_key
