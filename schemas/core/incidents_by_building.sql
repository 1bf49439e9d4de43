CREATE OR REPLACE TABLE marts.incidents_by_building AS
WITH households AS (
    SELECT estate_code, building, count(*) FILTER (WHERE living_residents > 0) AS households
    FROM core.houses GROUP BY estate_code, building
),
counted AS (
    SELECT created_month AS month, community_code, community_name AS community, estate_code, estate_name, building,
           category, count(*) AS incidents
    FROM core.grid_incidents WHERE created_at <= $as_of
    GROUP BY created_month, community_code, community_name, estate_code, estate_name, building, category
)
SELECT c.*, h.households
FROM counted c LEFT JOIN households h ON h.estate_code = c.estate_code AND h.building = c.building
ORDER BY c.month, c.community_code NULLS LAST, c.estate_code NULLS LAST, try_cast(c.building AS INTEGER) NULLS LAST,
         c.building NULLS LAST, c.category
