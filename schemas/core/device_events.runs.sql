SELECT n.received_run, make_timestamptz(any_value(n.received_ms) * 1000), count(*),
       count(*) - count(l.new_row), count(l.new_row), count(*) FILTER (WHERE l.new_row IS NULL AND NOT n.clock_ok),
       count(*) FILTER (WHERE l.new_row IS NULL AND n.is_late)
FROM _ib_ev_new n LEFT JOIN (SELECT new_row FROM _ib_ev_lost WHERE new_row IS NOT NULL) l ON l.new_row = n.new_row
GROUP BY n.received_run ORDER BY n.received_run
