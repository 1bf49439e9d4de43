CREATE OR REPLACE TABLE core.estates AS
SELECT xqbm AS estate_code, trim(xqmc) AS estate_name, sqbm AS community_code, trim(sqmc) AS community_name
FROM _ib_xq WHERE xqbm IS NOT NULL ORDER BY estate_code
