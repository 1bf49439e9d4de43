CREATE OR REPLACE TABLE marts.senior_allowance_gaps AS
SELECT p.person_key, p.community_code, p.community_name AS community, p.age_at_month_start AS age, p.birth_year
FROM core.persons p
WHERE p.registry_status = 1 AND p.registration_type = '户籍' AND p.age_at_month_start >= $senior_age
  AND NOT EXISTS (SELECT 1 FROM core.roster_entries r WHERE r.programme_code = 'senior'
                  AND r.roster_month = $month_first AND r.person_key = p.person_key)
ORDER BY p.community_code NULLS LAST, p.age_at_month_start DESC, p.person_key
