CREATE OR REPLACE TABLE marts.subsidy_after_exit AS
SELECT r.programme, r.roster_file, r.roster_row, r.person_key, coalesce(p.community_code, r.community_code)
       AS community_code, coalesce(p.community_name, r.community_name) AS community,
       p.registry_status AS exit_status, p.exit_date, r.amount_yuan, r.record_key
FROM core.roster_entries r JOIN core.persons p ON p.person_key = r.person_key
WHERE r.roster_month = $month_first AND p.registry_status IN (2, 3) AND p.exit_date < $month_first
ORDER BY r.programme_code, r.roster_file, r.roster_row, r.record_key
