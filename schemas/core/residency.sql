CREATE OR REPLACE {target} AS
WITH v AS (
    SELECT *, md5(concat_ws('|', coalesce(fwbh, '∅'), coalesce(hjlx, '∅'), coalesce(yhzgx, '∅'),
                            coalesce(rzrq, '∅'), coalesce(zt, '∅'), coalesce(zxrq, '∅'),
                            CASE WHEN jmid IS NULL THEN 'deleted' ELSE 'present' END)) AS content
    FROM _ib_jm_versions
), changed AS (
    SELECT *, content IS DISTINCT FROM lag(content) OVER w AS starts FROM v
    WINDOW w AS (PARTITION BY record_key ORDER BY run_as_of, run_id)
), versions AS (
    SELECT *, lead(run_as_of) OVER (PARTITION BY record_key ORDER BY run_as_of, run_id) AS next_as_of
    FROM changed WHERE starts
)
SELECT m.person_key, v.record_key, v.jmid AS registry_row_id, v.fwbh AS house_id, h.estate_code,
       h.building, h.unit, h.room, trim(v.hjlx) AS registration_type, trim(v.yhzgx) AS relation_to_head,
       try_cast(trim(v.zt) AS INTEGER) AS status,
       CAST(try_strptime(v.rzrq, ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS valid_from,
       CAST(try_strptime(v.zxrq, ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS valid_to,
       v.run_id AS recorded_from_run, v.run_as_of AS recorded_from, v.next_as_of AS recorded_to,
       v.next_as_of IS NULL AS is_current,
       coalesce(v.next_as_of IS NULL AND r.is_newest, false) AS is_person_current
FROM versions v
LEFT JOIN core.identity_map m ON m.system = 'resident_registry' AND m.record_key = v.record_key
LEFT JOIN core.houses h ON h.house_id = v.fwbh
LEFT JOIN _ib_reg r ON r.record_key = v.record_key
WHERE v.jmid IS NOT NULL
ORDER BY v.record_key, v.run_as_of
