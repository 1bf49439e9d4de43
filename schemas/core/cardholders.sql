CREATE OR REPLACE TABLE core.cardholders AS
WITH {house_by_key},
doors AS (SELECT unit_key, min(device_id) AS device_id FROM core.devices
          WHERE device_type = 'door_access' AND unit_key IS NOT NULL GROUP BY unit_key)
SELECT h.holder_id, h.record_key, m.person_key, m.matched_by, upper(trim(h.estate_code)) AS estate_code,
       pb.norm AS building, pu.norm AS unit, pr.norm AS room, {house_key} AS house_key,
       hk.house_id, doors.device_id AS door_device_id,
       CASE lower(trim(h.face_enrolled)) WHEN 'true' THEN true WHEN 'false' THEN false END AS face_enrolled,
       try_cast(h.valid_until AS DATE) AS valid_until, try_cast(h.updated_at AS TIMESTAMPTZ) AS updated_at
FROM _ib_holders h
{house_parts}
LEFT JOIN house_by_key hk ON hk.house_key = {house_key}
LEFT JOIN doors ON doors.unit_key = upper(trim(h.estate_code)) || '|' || pb.norm || '|' || pu.norm
LEFT JOIN core.identity_map m ON m.system = 'iot_platform' AND m.record_key = h.record_key
WHERE h.holder_id IS NOT NULL
ORDER BY h.holder_id
