"""The flow volume after a skipped day is filled in (QA: street of 600, seed 13, synced 11-28, 11-29,
skipped 11-30, synced 12-01, then 11-30, then 12-02: the gate stopped 12-02, kept_share 0.4983).

12-01 read the event log from 11-29's cursor: 48 hours of events. Once 11-30 was loaded, the check took
12-01's hours from the loaded run before it (24) and its rate doubled, so 12-02's true rate looked like a
halving; re-running 12-01 with ``--replay-forward`` does not extract it again and changed nothing. A run's
hours are those its extraction read: from the as-of of the state it resumed from (``read_from``)."""

from __future__ import annotations

import datetime as dt
import json
import os

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.landing.raw import run_id_for
from islandbridge.pipeline import load_settings, sync
from tests.helpers import living_street

FIRST = dt.date(2026, 11, 28)


def _sync(settings, served, day: str) -> dict:
    served.set_day(dt.date.fromisoformat(day))
    return sync(settings, parse_as_of(day), ["iot"], reconcile_identities=False)


@pytest.mark.slow
def test_a_day_filled_in_after_the_next_does_not_halve_the_rate_of_the_next(tmp_path, monkeypatch):
    with living_street(tmp_path, monkeypatch, days=6, seed=13, first=FIRST, residents=300) as (
        served,
        config,
    ):
        settings = load_settings(config, os.environ)
        for day in ("2026-11-28", "2026-11-29", "2026-12-01", "2026-11-30"):
            _sync(settings, served, day)
        after_gap = parse_as_of("2026-12-01")
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            (read_from,) = con.execute(
                "SELECT read_from FROM meta.source_state WHERE source = 'iot' AND run_id = ?",
                [run_id_for(after_gap)],
            ).fetchone()
        assert read_from == parse_as_of("2026-11-29"), "12-01 read the log from 11-29's cursor"
        _sync(settings, served, "2026-12-02")  # stopped by the gate (exit 5) before the fix
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            (observed,) = con.execute(
                "SELECT observed_json FROM meta.quality_results WHERE run_id = ? AND source = 'iot' "
                "AND stream = 'events' AND expectation = 'volume'",
                [run_id_for(parse_as_of("2026-12-02"))],
            ).fetchone()
    seen = json.loads(observed)
    assert seen["previous_run"] == run_id_for(after_gap)
    assert 0.7 < seen["kept_share"] < 1.3, seen


def test_each_run_is_measured_over_the_interval_its_extraction_read(tmp_path):
    """100 events an hour throughout: D3 read from D1's state (D2 skipped), 4,800 in 48 h; D2 filled in
    afterwards read 2,400 from D1's state too. D4 reads 2,400 from D3's: the same rate, not half of it.
    A state recorded before ``read_from`` existed is measured from the loaded run before it, as before."""
    from islandbridge.landing import raw
    from islandbridge.quality.tablechecks import flow

    d0 = dt.datetime(2026, 11, 28, 16, tzinfo=dt.UTC)
    d1, d2, d3, d4 = (d0 + dt.timedelta(days=n) for n in (1, 2, 3, 4))
    path = tmp_path / "wh.duckdb"
    con = raw.connect(str(path))
    for as_of, read, read_from in ((d0, 2400, None), (d1, 2400, d0), (d3, 4800, d1), (d2, 2400, d1)):
        run = raw.run_id_for(as_of)
        raw.begin_run(con, run, as_of, ["iot"], as_of + dt.timedelta(minutes=5))
        raw.finish_run(con, run, "loaded", as_of + dt.timedelta(minutes=6))
        con.execute(
            "INSERT INTO meta.run_sources VALUES (?, 'iot', 'events', ?, ?, 0, 0, 0, ?)",
            [run, read, read, as_of],
        )
        con.execute("INSERT INTO meta.source_state VALUES ('iot', ?, ?, '{}', ?)", [as_of, run, read_from])
    con.close()
    gate = duckdb.connect()
    gate.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    found = flow(gate, "iot", "events", d4, read_now=2400, read_from=d3)
    assert (found["previous_per_hour"], found["per_hour"], found["kept_share"]) == (100.0, 100.0, 1.0)
    gate.execute("DETACH wh")
    with duckdb.connect(str(path)) as con:  # states loaded before read_from was recorded
        con.execute("UPDATE meta.source_state SET read_from = NULL")
    gate.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    assert flow(gate, "iot", "events", d4, read_now=2400)["kept_share"] == 0.5
    gate.execute("DETACH wh")
    with duckdb.connect(str(path)) as con:  # a warehouse from before the column: validate reads it as is
        con.execute("ALTER TABLE meta.source_state DROP COLUMN read_from")
    gate.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    assert flow(gate, "iot", "events", d4, read_now=2400)["kept_share"] == 0.5
