"""Retention of the runs' notes in ``meta`` (the quality gate's stops go with the reports they name), and
the window's refusal of a day beyond it."""

from __future__ import annotations

import datetime as dt

import pytest

from islandbridge.config import Retention, parse_as_of
from islandbridge.quality.gate import STOPS_DDL
from islandbridge.warehouse import retention
from islandbridge.warehouse.retention import RetentionError
from tests.warehouse.test_core_fixtures import TinyWarehouse

NEWEST = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)  # as of 2026-11-21 00:00 in Shanghai


def _stop(w: TinyWarehouse, run_id: str, as_of: dt.datetime) -> None:
    w.con.execute(STOPS_DDL)
    w.con.execute(
        "INSERT INTO meta.gate_stops VALUES (?, ?, ?, ['row_count'], 'reports/x/quality.html')",
        [run_id, as_of, as_of],
    )


def test_gate_stops_older_than_reports_days_go_and_newer_ones_stay(tmp_path):
    """A stop is kept as long as the report it names (``reports_days``), by its own as-of: a stopped run
    that never loaded has no row in meta.runs."""
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    try:
        w.run(NEWEST)
        old, recent = NEWEST - dt.timedelta(days=40), NEWEST - dt.timedelta(days=10)
        _stop(w, "ib_old_never_loaded", old)
        _stop(w, "ib_recent", recent)
        policy = Retention(reports_days=30)
        win = retention.window(w.con, policy)
        events = tmp_path / "events"
        dry = retention.prune(w.con, win, policy, tmp_path / "no-vault.duckdb", events, apply=False)
        assert dry["gate_stops"] == 1
        assert w.con.execute("SELECT count(*) FROM meta.gate_stops").fetchall() == [(2,)]
        done = retention.prune(w.con, win, policy, tmp_path / "no-vault.duckdb", events, apply=True)
        assert done["gate_stops"] == 1
        assert w.con.execute("SELECT run_id FROM meta.gate_stops").fetchall() == [("ib_recent",)]
    finally:
        w.close()


def test_a_day_beyond_the_window_is_named_as_config_local_day_names_it_midnight_or_not(tmp_path):
    """The refused run's day is the one its as-of ends (`config.local_day`): 2026-11-18 for the end of that
    day (2026-11-19 00:00 in Shanghai) and for noon of it alike."""
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    try:
        horizon = w.run(dt.datetime(2026, 11, 19, 4, tzinfo=dt.UTC))  # 12:00 on the 19th in Shanghai
        w.con.execute(retention.DDL)
        w.con.execute("INSERT INTO meta.retention VALUES (?, ?)", [retention.HORIZON, horizon])
        for as_of in (parse_as_of("2026-11-18"), parse_as_of("2026-11-18T12:00")):
            with pytest.raises(RetentionError, match=r"^as of 2026-11-18 is beyond .* from 2026-11-19 on"):
                retention.check_window(w.con, as_of)
        retention.check_window(w.con, parse_as_of("2026-11-19"))  # ends after the horizon: inside
        # An as-of on the horizon's own day but before it: the advice names the instant, not only the day
        with pytest.raises(RetentionError, match=r"an as-of after 2026-11-19 12:00\+08:00 \(a day from"):
            retention.check_window(w.con, parse_as_of("2026-11-19T10:00"))
    finally:
        w.close()
