CREATE OR REPLACE TABLE core.persons AS
WITH keys AS (SELECT DISTINCT person_key FROM core.identity_map),
reg AS (
    SELECT r.person_key, r.record_key, trim(r.zt) AS zt, trim(r.hjlx) AS hjlx, r.fwbh,
           CAST(try_strptime(r.zxrq, ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS exit_on,
           CASE trim(r.xb) WHEN '1' THEN 'M' WHEN '2' THEN 'F' END AS sex
    FROM _ib_reg r WHERE r.is_newest AND r.person_key IS NOT NULL
),
births AS (  -- every birth date a person's records give, most trusted first
    SELECT person_key, birth, rank FROM (
        SELECT person_key, CAST(try_strptime(trim(csrq), ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS birth,
               CASE WHEN is_newest THEN 1 ELSE 2 END AS rank FROM _ib_reg
        UNION ALL
        SELECT person_key, try_cast(sfzh__birth_date AS DATE),
               CASE sfzh__kind WHEN 'legacy15_upgraded' THEN {legacy_rank} ELSE 3 END FROM _ib_reg
        UNION ALL
        SELECT l.person_key, try_cast(g.id_card__birth_date AS DATE),
               CASE g.id_card__kind WHEN 'legacy15_upgraded' THEN {legacy_rank} + 1 ELSE 4 END
        FROM _ib_gres g JOIN core.identity_map l ON l.system = 'grid_platform' AND l.record_key = g.record_key
        UNION ALL
        SELECT l.person_key, try_cast(s.身份证号__birth_date AS DATE), 5
        FROM _ib_senior s JOIN core.identity_map l ON l.system = 'civil_affairs' AND l.record_key = s.record_key
    ) WHERE birth IS NOT NULL AND person_key IS NOT NULL
      -- A 15-digit number has no century: its upgrade reads 19xx, wrong for anyone born since 2000, so
      -- a 15-digit birth date that makes someone a centenarian is not believed.
      AND NOT (rank >= {legacy_rank} AND birth <= $day::DATE - INTERVAL {century} YEAR)
),
birth AS (SELECT person_key, arg_min(birth, (rank, birth)) AS birth FROM births GROUP BY person_key),
grid AS (
    SELECT l.person_key,
           arg_min(CASE trim(g.gender) WHEN '男' THEN 'M' WHEN '女' THEN 'F' END, g.record_key) AS sex,
           arg_min(g.grid_code, (trim(g.status) <> '在册', g.record_key)) AS grid_code,
           list_distinct(flatten(list(coalesce(try(from_json(g.tags, '["VARCHAR"]')), [])))) AS tags
    FROM _ib_gres g JOIN core.identity_map l ON l.system = 'grid_platform' AND l.record_key = g.record_key
    GROUP BY l.person_key
),
civil AS (
    SELECT l.person_key, arg_max(trim(c.community), (c.roster_month, c.record_key)) AS community_name,
           arg_max(CASE trim(c.sex) WHEN '男' THEN 'M' WHEN '女' THEN 'F' END, (c.roster_month, c.record_key)) AS sex
    FROM (SELECT record_key, 所属社区 AS community, roster_month, NULL AS sex FROM _ib_dibao
          UNION ALL SELECT record_key, 所属社区, roster_month, 性别 FROM _ib_senior) c
    JOIN core.identity_map l ON l.system = 'civil_affairs' AND l.record_key = c.record_key
    GROUP BY l.person_key
),
card AS (
    SELECT person_key, arg_min(house_key, (house_key IS NULL, holder_id)) AS house_key
    FROM core.cardholders WHERE person_key IS NOT NULL GROUP BY person_key
),
house_by_key AS (
    SELECT house_key, min(house_id) AS house_id, min(grid_code) AS grid_code FROM core.houses
    WHERE house_key IS NOT NULL GROUP BY house_key
),
reg_tags AS (
    SELECT r.person_key, list_distinct(list(trim(b.bq))) AS tags
    FROM _ib_bq b JOIN _ib_reg r ON r.jmid = b.jmid WHERE r.person_key IS NOT NULL AND b.bq IS NOT NULL
    GROUP BY r.person_key
),
systems AS (
    SELECT person_key, bool_or(system = 'resident_registry') AS in_registry,
           bool_or(system = 'grid_platform') AS in_grid, bool_or(system = 'civil_affairs') AS in_civil,
           bool_or(system = 'iot_platform') AS in_iot
    FROM core.identity_map GROUP BY person_key
),
placed AS (
    SELECT k.person_key, coalesce(rh.house_id, ch.house_id) AS house_id,
           coalesce(rh.house_key, card.house_key) AS house_key,
           coalesce(rh.estate_code, split_part(card.house_key, '|', 1)) AS estate_code,
           coalesce(rh.building, split_part(card.house_key, '|', 2)) AS building,
           coalesce(rh.unit, split_part(card.house_key, '|', 3)) AS unit,
           coalesce(rh.room, split_part(card.house_key, '|', 4)) AS room,
           coalesce(rh.grid_code, grid.grid_code, ch.grid_code) AS grid_code,
           CASE WHEN rh.house_id IS NOT NULL THEN 'registry' WHEN card.house_key IS NOT NULL THEN 'iot'
                WHEN grid.grid_code IS NOT NULL THEN 'grid' WHEN civil.community_name IS NOT NULL THEN 'civil'
           END AS place_source
    FROM keys k
    LEFT JOIN reg ON reg.person_key = k.person_key
    LEFT JOIN core.houses rh ON rh.house_id = reg.fwbh
    LEFT JOIN card ON card.person_key = k.person_key
    LEFT JOIN house_by_key ch ON ch.house_key = card.house_key
    LEFT JOIN grid ON grid.person_key = k.person_key
    LEFT JOIN civil ON civil.person_key = k.person_key
),
{communities}
SELECT k.person_key,
       coalesce(reg.sex, grid.sex, civil.sex) AS sex,
       year(birth.birth)::INTEGER AS birth_year,
       date_diff('year', birth.birth, $day::DATE)::INTEGER
           - (strftime(birth.birth, '%m%d') > strftime($day::DATE, '%m%d'))::INTEGER AS age,
       date_diff('year', birth.birth, $month_first::DATE)::INTEGER
           - (strftime(birth.birth, '%m%d') > strftime($month_first::DATE, '%m%d'))::INTEGER AS age_at_month_start,
       reg.hjlx AS registration_type,
       try_cast(reg.zt AS INTEGER) AS registry_status,
       CASE WHEN try_cast(reg.zt AS INTEGER) IN (2, 3) THEN reg.exit_on END AS exit_date,
       coalesce(e.community_code, gc.community_code, cc.community_code) AS community_code,
       coalesce(e.community_name, gc.community_name, civil.community_name) AS community_name,
       p.estate_code, e.estate_name, p.building, p.unit, p.room, p.house_id, p.house_key, p.grid_code,
       p.place_source,
       list_sort(list_distinct(list_concat(coalesce(reg_tags.tags, []), coalesce(grid.tags, [])))) AS tags,
       list_contains(coalesce(reg_tags.tags, []), '{alone_tag}')
           OR list_contains(coalesce(grid.tags, []), '{alone_tag}') AS is_tagged_living_alone,
       coalesce(reg.zt = '1' AND rh.living_residents = 1, false) AS is_living_alone,
       s.in_registry, s.in_grid, s.in_civil, s.in_iot,
       (s.in_registry::INTEGER + s.in_grid::INTEGER + s.in_civil::INTEGER + s.in_iot::INTEGER) AS systems
FROM keys k
JOIN systems s ON s.person_key = k.person_key
JOIN placed p ON p.person_key = k.person_key
LEFT JOIN reg ON reg.person_key = k.person_key
LEFT JOIN core.houses rh ON rh.house_id = reg.fwbh
LEFT JOIN birth ON birth.person_key = k.person_key
LEFT JOIN grid ON grid.person_key = k.person_key
LEFT JOIN civil ON civil.person_key = k.person_key
LEFT JOIN reg_tags ON reg_tags.person_key = k.person_key
LEFT JOIN core.estates e ON e.estate_code = p.estate_code
LEFT JOIN _ib_grids gc ON gc.grid_code = p.grid_code AND e.estate_code IS NULL
LEFT JOIN communities cc ON cc.community_name = civil.community_name
ORDER BY k.person_key
