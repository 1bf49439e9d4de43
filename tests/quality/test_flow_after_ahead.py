"""The flow volume after a day synced before it ended (found in review).

Day D1 is synced at 09:00 as of its midnight (15 h ahead): it reads 9 h of events (900 at 100/h) and is
loaded. D2 reads the 15 h D1 had not seen plus its own 24 h: 3,900. D3 reads 2,400, the same 100/h as
always; measured against D2, kept_share is 2400/3900 = 0.615, under the 0.7 of ``max_drop`` 0.3, a stop
although nothing dropped. Neither D1's count nor D2's is the rate of its interval: not comparable."""

import datetime as dt
import json

import duckdb

from islandbridge.landing import raw
from islandbridge.quality.tablechecks import flow

D3 = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
D0, D1, D2 = (D3 - dt.timedelta(days=n) for n in (3, 2, 1))
EARLY = D1 - dt.timedelta(hours=15)


def _warehouse(tmp_path, d1_synced_at: dt.datetime):
    path = tmp_path / "wh.duckdb"
    con = raw.connect(str(path))
    runs = ((D0, 2400, D0), (D1, 900, d1_synced_at), (D2, 3900 if d1_synced_at < D1 else 2400, D2))
    for as_of, read, synced in runs:
        run = raw.run_id_for(as_of)
        raw.begin_run(con, run, as_of, ["iot"], synced)
        raw.finish_run(con, run, "loaded", synced)
        con.execute(
            "INSERT INTO meta.run_sources VALUES (?, 'iot', 'events', ?, ?, 0, 0, 0, ?)",
            [run, read, read, synced],
        )
        state = {"events": {"cursor": "c", "reference_ms": int(synced.timestamp() * 1000)}}
        con.execute(
            "INSERT INTO meta.source_state (source, as_of, run_id, state_json) VALUES ('iot', ?, ?, ?)",
            [as_of, run, json.dumps(state)],
        )
    con.close()
    gate = duckdb.connect()
    gate.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    return gate


def test_the_runs_around_a_day_synced_before_it_ended_are_no_baseline(tmp_path):
    gate = _warehouse(tmp_path, d1_synced_at=EARLY)
    after_next = flow(gate, "iot", "events", D3, read_now=2400, now=D3 + dt.timedelta(hours=1))
    assert after_next["baseline"].startswith("not comparable"), after_next
    assert raw.run_id_for(D1) in after_next["baseline"]
    assert "kept_share" not in after_next


def test_a_drop_after_days_synced_on_time_still_counts(tmp_path):
    gate = _warehouse(tmp_path, d1_synced_at=D1 + dt.timedelta(minutes=5))
    found = flow(gate, "iot", "events", D3, read_now=600, now=D3 + dt.timedelta(hours=1))
    assert found["kept_share"] == 0.25, found
