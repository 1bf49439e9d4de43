WITH runs AS (SELECT run_id, as_of, lag(as_of) OVER (ORDER BY as_of, run_id) AS previous_as_of FROM meta.runs),
-- When the log a run read arrived, as its connector estimated it (a backfill reads a log newer than its as-of)
arrival AS (
    SELECT run_id, max(try_cast(json_extract_string(state_json, '$.events.reference_ms') AS BIGINT)) AS reference_ms
    FROM meta.source_state WHERE source = {source} GROUP BY run_id
),
e AS (
    SELECT e.event_id, coalesce(try_cast(e.ts AS BIGINT), try_cast(try_cast(e.ts AS DOUBLE) AS BIGINT), 0) AS ts_ms,
           e.device_id, trim(e.type) AS event_type, nullif(trim(e.holder_id), '') AS holder_id,
           try_cast(e.value AS DOUBLE) AS reading, nullif(trim(e.alarm_code), '') AS alarm_code,
           e._run_id AS received_run, epoch_ms(r.as_of) AS received_ms, epoch_ms(r.previous_as_of) AS previous_ms,
           CASE WHEN a.reference_ms > epoch_ms(r.as_of) + {read_late_ms} THEN a.reference_ms ELSE epoch_ms(r.as_of) END AS arrival_ms,
           e._ib_row AS new_row
    FROM (SELECT {columns}, _run_id, _ib_row FROM {table}) e JOIN runs r ON r.run_id = e._run_id
         LEFT JOIN arrival a ON a.run_id = e._run_id
    WHERE list_contains($pending, e._run_id) AND e.event_id IS NOT NULL
)
SELECT event_id, ts_ms,
       CAST(timezone('{local_tz}', make_timestamptz(ts_ms * 1000)) AS DATE) AS day, device_id, event_type, holder_id,
       reading, alarm_code, clock_issue IS NULL AS clock_ok, clock_issue,
       clock_issue IS NULL AND previous_ms IS NOT NULL AND ts_ms < previous_ms AS is_late, received_run,
       received_ms, new_row
FROM (SELECT *, CASE WHEN ts_ms < {earliest_valid_ms} THEN 'unset' WHEN ts_ms > arrival_ms + {ahead_ms} THEN 'ahead' END
                AS clock_issue FROM e)
