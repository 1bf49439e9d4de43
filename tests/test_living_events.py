"""The device-event log of a living street: kept once as Parquet parts, settled day by day (issue #17).

Three days of a 300-resident living street are synced in order. The raw IoT events are a view over the
landed parts (no table); every event landed is in the view; and ``core.device_events`` built day by day
(each build settling only its run's events against the days they touch, a day's late events in a further
file of the day) holds the same rows, day by day and in every column, as a build of all three runs at
once (which writes each day in one file) — and building the same as-of again changes nothing, file for
file.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from islandbridge.config import parse_as_of
from islandbridge.landing import raw
from islandbridge.pipeline import build, events_dir, load_settings, sync
from tests.helpers import event_rows_by_day, living_street
from tests.warehouse.test_core import files_on_disk

FIRST = dt.date(2026, 11, 20)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(3)]


def _events(settings) -> tuple:
    con = raw.connect(str(settings.warehouse_path), read_only=True)
    try:
        view = con.execute("SELECT * FROM core.device_events ORDER BY event_id").fetchall()
        runs = con.execute("SELECT * FROM core.device_event_runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    return view, runs, event_rows_by_day(settings.warehouse_path, events_dir(settings))


def _files(settings) -> tuple:
    con = raw.connect(str(settings.warehouse_path), read_only=True)
    try:
        listed = con.execute("SELECT * FROM core.device_event_files ORDER BY day, file").fetchall()
    finally:
        con.close()
    return listed, files_on_disk(events_dir(settings))


@pytest.mark.slow
def test_device_events_built_day_by_day_equal_one_build_of_all_days(tmp_path, monkeypatch):
    with living_street(tmp_path, monkeypatch, days=len(DAYS), seed=7, first=FIRST) as (served, config):
        settings = load_settings(config, os.environ)
        for day in DAYS:
            served.set_day(day)
            sync(settings, parse_as_of(day.isoformat()))
    last = parse_as_of(DAYS[-1].isoformat())
    day_by_day, day_by_day_files = _events(settings), _files(settings)
    con = raw.connect(str(settings.warehouse_path))
    try:
        kind = con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_schema = 'raw' AND table_name = 'iot__events'"
        ).fetchall()
        landed = con.execute(
            "SELECT run_id, landed FROM meta.run_sources WHERE source = 'iot' AND stream = 'events' ORDER BY 1"
        ).fetchall()
        in_view = con.execute(
            "SELECT _run_id, count(*) FROM raw.iot__events GROUP BY 1 ORDER BY 1"
        ).fetchall()
        con.execute("DELETE FROM core.device_event_files; DELETE FROM core.device_event_runs")
    finally:
        con.close()
    assert kind == [("VIEW",)] and in_view == landed and len(landed) == len(DAYS)
    assert sum(r[4] for r in day_by_day[1]) > 0  # the log repeated some events across or within runs
    build(settings, last)  # all three runs pending at once
    at_once = _events(settings), _files(settings)
    assert at_once[0] == day_by_day
    assert len(day_by_day_files[0]) > len(at_once[1][0])  # late events were further files of their days
    build(settings, last)  # the same as-of again: the same files, byte for byte
    assert (_events(settings), _files(settings)) == at_once
