CREATE OR REPLACE TEMP TABLE _ib_ev_keys AS
SELECT event_id, received_ms, received_run, new_row, NULL::DATE AS old_day, NULL::VARCHAR AS old_file FROM _ib_ev_new
UNION ALL
SELECT event_id, received_ms, received_run, NULL, day, filename FROM {kept};
CREATE OR REPLACE TEMP TABLE _ib_ev_lost AS
SELECT event_id, received_run, new_row, old_day, old_file FROM _ib_ev_keys
WHERE event_id IN (SELECT event_id FROM _ib_ev_keys GROUP BY event_id HAVING count(*) > 1)
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_ms, received_run, new_row) > 1;
DROP TABLE _ib_ev_keys;
