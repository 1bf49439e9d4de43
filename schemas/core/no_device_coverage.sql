CREATE OR REPLACE TABLE marts.no_device_coverage AS
SELECT person_key, community_code, community_name AS community, estate_name, building, unit, room, address, age,
       age_at_least, check_reason,
       unregistered_cards_at_home
FROM _ib_elderly e
WHERE door_cards = 0 AND NOT has_water_meter
ORDER BY e.community_code NULLS LAST, e.estate_code NULLS LAST, try_cast(e.building AS INTEGER) NULLS LAST,
         e.building NULLS LAST, try_cast(e.unit AS INTEGER) NULLS LAST, e.unit NULLS LAST,
         try_cast(e.room AS INTEGER) NULLS LAST, e.room NULLS LAST, person_key
