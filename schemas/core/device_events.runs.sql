SELECT n.received_run, make_timestamptz(any_value(n.received_ms) * 1000), count(*),
       count(a.event_id), count(*) - count(a.event_id), count(a.event_id) FILTER (WHERE NOT a.clock_ok),
       count(a.event_id) FILTER (WHERE a.is_late)
FROM _ib_ev_new n LEFT JOIN _ib_ev_all a ON a.event_id = n.event_id AND a.received_run = n.received_run
GROUP BY n.received_run ORDER BY n.received_run
