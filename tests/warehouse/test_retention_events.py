"""Retention of device events: merged raw slices before the horizon, and day partitions by age."""

from __future__ import annotations

import datetime as dt

import pytest

from islandbridge.config import Retention
from islandbridge.warehouse import retention
from tests.warehouse.test_core import T1, T2, build, event, files_on_disk
from tests.warehouse.test_core_fixtures import TinyWarehouse, ms

HOUR_MS = 3_600_000


@pytest.fixture
def two_days(tmp_path):
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    r1, r2 = w.run(T1), w.run(T2)
    w.add("iot__events", r1, [event("old", ms(T1) - 5 * HOUR_MS)])
    w.add("iot__events", r2, [event("new", ms(T2) - 5 * HOUR_MS)])
    build(w, T1, tmp_path / "events")
    build(w, T2, tmp_path / "events")
    yield w, tmp_path / "events", r1
    w.close()


def _prune(w, events, policy: Retention, apply: bool) -> dict[str, int]:
    win = retention.window(w.con, policy)
    return retention.prune(w.con, win, policy, events.parent / "no-vault.duckdb", events, apply=apply)


def test_a_dry_run_counts_and_changes_nothing(two_days):
    w, events, _ = two_days
    before = w.snapshot("raw.iot__events", "core.device_event_files"), files_on_disk(events)
    counts = _prune(w, events, Retention(days=1, device_events_days=1), apply=False)
    assert (counts["raw_device_events"], counts["device_event_days"], counts["device_events"]) == (1, 1, 1)
    assert (w.snapshot("raw.iot__events", "core.device_event_files"), files_on_disk(events)) == before


def test_merged_raw_events_up_to_the_horizon_go_and_their_events_stay_in_the_day_files(two_days):
    w, events, _ = two_days
    counts = _prune(w, events, Retention(days=1), apply=True)
    assert counts["raw_device_events"] == 1 and counts["device_event_days"] == 0
    assert w.con.execute("SELECT event_id FROM raw.iot__events").fetchall() == [("new",)]
    ids = w.con.execute("SELECT event_id FROM core.device_events ORDER BY 1").fetchall()
    assert ids == [("new",), ("old",)]


def test_day_partitions_older_than_their_retention_leave_the_view_and_the_disk(two_days):
    w, events, _ = two_days
    _prune(w, events, Retention(device_events_days=1), apply=True)
    assert w.con.execute("SELECT event_id, day FROM core.device_events").fetchall() == [
        ("new", dt.date(2026, 11, 20))
    ]
    assert [p.split("/")[0] for p in files_on_disk(events)] == ["day=2026-11-20"]
