CREATE OR REPLACE TABLE marts.island_coverage AS
SELECT community_code, community_name AS community, count(*) AS persons_known,
       count(*) FILTER (WHERE in_registry) AS in_registry, count(*) FILTER (WHERE in_grid) AS in_grid,
       count(*) FILTER (WHERE in_civil) AS in_civil, count(*) FILTER (WHERE in_iot) AS in_iot,
       count(*) FILTER (WHERE systems >= 2) AS in_two_or_more, count(*) FILTER (WHERE systems = 4) AS in_all_four
FROM core.persons
GROUP BY community_code, community_name
ORDER BY community_code NULLS LAST, community_name NULLS LAST
