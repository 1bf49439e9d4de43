CREATE OR REPLACE TABLE marts.unmatched_roster_rows AS
WITH latest AS (SELECT max(run_id) AS run_id FROM meta.identity_runs WHERE as_of <= $as_of),
undecided AS (  -- two persons it matched about equally, or several people of its name it could be
    SELECT system_l AS system, record_key_l AS record_key FROM core.identity_review, latest
    WHERE identity_review.run_id = latest.run_id AND reason IN ('ambiguous', 'several_namesakes')
    UNION SELECT system_r, record_key_r FROM core.identity_review, latest
    WHERE identity_review.run_id = latest.run_id AND reason IN ('ambiguous', 'several_namesakes')
),
ambiguous AS (SELECT record_key FROM undecided WHERE system = 'civil_affairs')
SELECT r.programme, r.roster_month, r.roster_file, r.roster_row, r.person_key, r.record_key,
       r.community_code, r.community_name AS community, r.id_kind,
       CASE WHEN r.id_kind IN {damaged_id_kinds} THEN 'damaged_id_number'
            WHEN r.record_key IN (SELECT record_key FROM ambiguous) THEN 'ambiguous'
            ELSE 'no_candidate' END AS reason
FROM core.roster_entries r LEFT JOIN core.persons p ON p.person_key = r.person_key
WHERE r.roster_month = $month_first AND NOT coalesce(p.in_registry OR p.in_grid OR p.in_iot, false)
ORDER BY r.programme_code, r.roster_file, r.roster_row, r.record_key
