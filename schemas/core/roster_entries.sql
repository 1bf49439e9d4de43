CREATE OR REPLACE TABLE core.roster_entries AS
WITH rows AS (
    SELECT 'dibao' AS programme_code, record_key, landed_as_of, "序号" AS seq, roster_month, source_file,
           source_row, "所属社区" AS community, "月保障金(元)" AS amount, NULL AS rate, "保障类别" AS category,
           "家庭人口" AS household_size, "保障人数" AS persons_covered, NULL AS sex, NULL AS birth_month,
           NULL AS age, "身份证号码__kind" AS id_kind
    FROM _ib_dibao
    UNION ALL
    SELECT 'senior', record_key, landed_as_of, "序号", roster_month, source_file, source_row, "所属社区",
           "发放金额", "补贴标准(元/月)", NULL, NULL, NULL, "性别", "出生年月", "年龄", "身份证号__kind"
    FROM _ib_senior
),
newest AS (  -- a month's roster is its file landed last: rows a correction dropped are no longer on it
    SELECT *, landed_as_of = max(landed_as_of) OVER (PARTITION BY programme_code, roster_month) AS on_roster
    FROM rows
),
{communities}
SELECT n.programme_code, CASE n.programme_code WHEN 'dibao' THEN '低保' ELSE '高龄补贴' END AS programme,
       CAST(try_strptime(trim(n.roster_month) || '01', '%Y%m%d') AS DATE) AS roster_month,
       n.source_file AS roster_file, try_cast(trim(n.seq) AS INTEGER) AS roster_row,
       try_cast(n.source_row AS INTEGER) AS file_row, n.record_key, m.person_key, m.matched_by,
       m.match_probability, trim(n.community) AS community_name, c.community_code,
       try_cast(trim(n.amount) AS DECIMAL(12, 2)) AS amount_yuan,
       try_cast(trim(n.rate) AS DECIMAL(12, 2)) AS monthly_rate_yuan, trim(n.category) AS category,
       try_cast(trim(n.household_size) AS INTEGER) AS household_size,
       try_cast(trim(n.persons_covered) AS INTEGER) AS persons_covered,
       CASE trim(n.sex) WHEN '男' THEN 'M' WHEN '女' THEN 'F' END AS declared_sex,
       strftime(try_strptime(trim(n.birth_month), '%Y.%m'), '%Y-%m') AS declared_birth_month,
       try_cast(trim(n.age) AS INTEGER) AS declared_age, n.id_kind
FROM newest n
LEFT JOIN core.identity_map m ON m.system = 'civil_affairs' AND m.record_key = n.record_key
LEFT JOIN communities c ON c.community_name = trim(n.community)
WHERE n.on_roster
ORDER BY programme_code, roster_month, roster_row, n.record_key
