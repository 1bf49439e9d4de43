CREATE OR REPLACE TABLE core.grid_incidents AS
WITH {house_by_key},
by_grid AS (  -- an address without an estate ("3栋2单元501"): the estate of the grid's matching houses
    SELECT p.event_id, min(h.estate_code) AS estate_code
    FROM _ib_places p JOIN _ib_gev e ON e.event_id = p.event_id
    JOIN core.houses h ON h.grid_code = e.grid_code AND h.building = p.building
        AND (p.unit IS NULL OR h.unit = p.unit) AND (p.room IS NULL OR h.room = p.room)
    WHERE p.estate_code IS NULL AND p.building IS NOT NULL
    GROUP BY p.event_id HAVING count(DISTINCT h.estate_code) = 1
),
placed AS (
    SELECT e.*, coalesce(p.estate_code, g.estate_code) AS estate_code, p.building, p.unit, p.room,
           CASE WHEN p.estate_code IS NOT NULL THEN 'address' WHEN g.estate_code IS NOT NULL THEN 'address_and_grid'
                ELSE 'grid_only' END AS located_by,
           make_timestamptz(try_cast(e.created_at AS BIGINT) * 1000) AS created_ts
    FROM _ib_gev e LEFT JOIN _ib_places p ON p.event_id = e.event_id LEFT JOIN by_grid g ON g.event_id = e.event_id
)
SELECT p.event_id, p.record_key, trim(p.category) AS category, trim(p.status) AS status, p.created_ts AS created_at,
       CAST(date_trunc('month', timezone('{local_tz}', p.created_ts)) AS DATE) AS created_month,
       try_strptime(trim(p.update_time) || ' +08:00', '%Y-%m-%d %H:%M:%S %z') AS updated_at,
       try_strptime(trim(p.closed_at) || ' +08:00', '%Y-%m-%d %H:%M:%S %z') AS closed_at,
       p.grid_code, coalesce(e.community_code, g.community_code) AS community_code,
       coalesce(e.community_name, trim(g.community_name)) AS community_name, p.estate_code, e.estate_name,
       CASE WHEN p.estate_code IS NOT NULL THEN p.building END AS building,
       CASE WHEN p.estate_code IS NOT NULL THEN p.unit END AS unit,
       CASE WHEN p.estate_code IS NOT NULL THEN p.room END AS room,
       hk.house_id, p.located_by, m.person_key AS reporter_person_key
FROM placed p
LEFT JOIN core.estates e ON e.estate_code = p.estate_code
LEFT JOIN _ib_grids g ON g.grid_code = p.grid_code
LEFT JOIN house_by_key hk ON hk.house_key = p.estate_code || '|' || p.building || '|' || p.unit || '|' || p.room
LEFT JOIN core.identity_map m ON m.system = 'grid_platform' AND m.record_key = p.record_key
WHERE p.event_id IS NOT NULL
ORDER BY p.event_id
