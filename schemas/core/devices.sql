CREATE OR REPLACE TABLE core.devices AS
WITH {house_by_key}
SELECT d.device_id, trim(d.device_type) AS device_type, trim(d.status) AS status,
       try_cast(d.installed_at AS TIMESTAMPTZ) AS installed_at, upper(trim(d.estate_code)) AS estate_code,
       pb.norm AS building, pu.norm AS unit, pr.norm AS room,
       CASE WHEN pb.norm IS NOT NULL AND pu.norm IS NOT NULL
            THEN upper(trim(d.estate_code)) || '|' || pb.norm || '|' || pu.norm END AS unit_key,
       {house_key} AS house_key, hk.house_id
FROM _ib_dev d
{house_parts}
LEFT JOIN house_by_key hk ON hk.house_key = {house_key}
WHERE d.device_id IS NOT NULL
ORDER BY d.device_id
