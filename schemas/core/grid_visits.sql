CREATE OR REPLACE TABLE core.grid_visits AS
SELECT v.visit_id, v.record_key, try_strptime(trim(v.visit_time) || ' +08:00', '%Y-%m-%d %H:%M:%S %z') AS visited_at,
       trim(v.visit_type) AS visit_type, v.worker_id, v.person_id AS grid_person_id, m.person_key, g.grid_code
FROM _ib_gvis v
LEFT JOIN _ib_gres g ON g.person_id = v.person_id
LEFT JOIN core.identity_map m ON m.system = 'grid_platform' AND m.record_key = g.record_key
WHERE v.visit_id IS NOT NULL
ORDER BY v.visit_id
