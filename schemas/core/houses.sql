CREATE OR REPLACE TABLE core.houses AS
SELECT f.fwbh AS house_id, f.xqbm AS estate_code, e.estate_name, e.community_code, e.community_name,
       pb.norm AS building, pu.norm AS unit, pr.norm AS room, {house_key} AS house_key,
       f.wgbm AS grid_code,
       (SELECT count(*) FROM _ib_reg r WHERE r.fwbh = f.fwbh AND trim(r.zt) = '1')::INTEGER AS living_residents
FROM _ib_fw f
LEFT JOIN core.estates e ON e.estate_code = f.xqbm
{house_parts}
WHERE f.fwbh IS NOT NULL
ORDER BY house_id
