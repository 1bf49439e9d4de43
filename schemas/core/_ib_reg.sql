CREATE OR REPLACE TEMP TABLE _ib_reg AS
SELECT j.*, m.person_key,
       row_number() OVER (PARTITION BY coalesce(m.person_key, j.record_key)
                          ORDER BY try_strptime(j.rzrq, ['%Y-%m-%d', '%Y%m%d']) DESC NULLS LAST,
                                   try_strptime(j.cjsj, '%Y-%m-%d %H:%M:%S') DESC NULLS LAST,
                                   try_cast(j.jmid AS BIGINT) DESC NULLS LAST, j.jmid DESC) = 1 AS is_newest
FROM _ib_jm j
LEFT JOIN core.identity_map m ON m.system = 'resident_registry' AND m.record_key = j.record_key
