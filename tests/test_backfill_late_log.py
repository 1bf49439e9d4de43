"""A backfill reads the IoT event log as it is now, and loses none of its real events (QA, main 3169f6a).

A living street is served at its last day and its days are synced from the first: the first run (no
earlier run, so it reads the log from its start) sees the real events of the days after its as-of. They
used to be quarantined as "broken device clocks" (more than a day after the as-of) and the cursor moved
past them, so the later days read nothing and ``core.device_events`` silently lost them. Now every event
of the log is landed or quarantined for a real broken clock, and ``core.device_events`` holds the events
an in-order run of the same days holds.

Only the delivery columns differ, by design: a backfilled event was received by the earlier run that read
it (``received_run``, ``received_by``), and ``is_late`` compares its ts with the previous run of *its*
receiving run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import pytest

from islandbridge.config import parse_as_of
from islandbridge.connectors import iot_clock
from islandbridge.devtools.simulator.iot_events import FUTURE_TS
from islandbridge.pipeline import load_settings, sync
from tests.helpers import living_street, warehouse

FIRST = dt.date(2026, 11, 18)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(3)]
READ_AT = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
EVENT_COLUMNS = (
    "event_id, ts_ms, event_at, day, device_id, event_type, holder_id, reading, alarm_code, "
    "clock_ok, clock_issue"
)


def _events(config) -> list[tuple]:
    with warehouse(config) as con:
        return con.execute(f"SELECT {EVENT_COLUMNS} FROM core.device_events ORDER BY event_id").fetchall()


def _set_aside(config) -> dict[str, list[str]]:
    """Each iot event quarantined, by the connector or the quality gate, and why."""
    with warehouse(config) as con:
        rows = con.execute(
            "SELECT record_key, reason FROM meta.quarantine WHERE source = 'iot' AND stream = 'events' "
            "UNION ALL SELECT record_key, array_to_string(expectations_failed, ',') FROM meta.quality_quarantine "
            "WHERE source = 'iot' AND stream = 'events'"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for key, reason in rows:
        out.setdefault(key.split(":", 1)[1], []).append(reason)
    return out


def _accounting(config) -> list[tuple]:
    with warehouse(config) as con:
        return con.execute(
            "SELECT run_id, read, landed, quarantined, duplicates FROM meta.run_sources "
            "WHERE source = 'iot' AND stream = 'events' ORDER BY run_id"
        ).fetchall()


@pytest.mark.slow
def test_a_backfill_before_any_run_lands_every_real_event_of_the_log_read_late(tmp_path, monkeypatch):
    # the log is read just after the street's last day, whatever the machine's clock says
    monkeypatch.setattr(iot_clock, "read_now_ms", lambda: int(READ_AT.timestamp() * 1000))
    with living_street(tmp_path, monkeypatch, days=len(DAYS), seed=7, first=FIRST) as (served, config):
        backfill = tmp_path / "backfill" / "islandbridge.yml"
        shutil.copytree(config.parent / "secrets", backfill.parent / "secrets")  # the same person keys
        backfill.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
        in_order = load_settings(config, os.environ)
        for day in DAYS:
            served.set_day(day)
            sync(in_order, parse_as_of(day.isoformat()))
        late = load_settings(backfill, os.environ)
        served.set_day(DAYS[-1])  # the log as it is now, read by every day of the backfill
        for day in DAYS:
            sync(late, parse_as_of(day.isoformat()))

    iot = tmp_path / "street" / "iot"
    served_lines = json.loads((iot / "events_days.json").read_text(encoding="utf-8"))[DAYS[-1].isoformat()]
    log = [json.loads(line) for line in (iot / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    log = log[:served_lines]
    stamps = {e["event_id"]: e["ts"] for e in log}
    broken = {k for k, ts in stamps.items() if ts == 0 or ts in FUTURE_TS}
    assert broken and len(stamps) > 10_000

    events, set_aside = _events(backfill), _set_aside(backfill)
    kept = {r[0] for r in events}
    # every event of the log is landed or quarantined, and only the broken clocks are quarantined
    assert kept | set(set_aside) == set(stamps)
    assert set(set_aside) == broken, sorted(set(set_aside) ^ broken)[:5]
    assert all("device clock" in r for reasons in set_aside.values() for r in reasons)
    # the backfill's first run read the whole log; its later days had nothing new to read
    accounting = _accounting(backfill)
    assert accounting[0][1] == len(log) and [a[1] for a in accounting[1:]] == [0, 0]
    assert accounting[0][2] == len(kept)

    # the same events as an in-order run of the same days, each counted at its own ts
    assert events == _events(config)
    assert _set_aside(config).keys() == set_aside.keys()


@pytest.mark.slow
def test_a_backfill_after_a_gap_is_not_stopped_by_the_event_volume_check(tmp_path, monkeypatch):
    """Two days synced as they happen, then a gap, then the missing days backfilled from a log read at the
    last day: the first backfilled run reads every event up to now, the next ones little. The flow volume
    check (critical by default) must not take that for a source that stopped sending."""
    first, days = dt.date(2026, 11, 16), 5
    monkeypatch.setattr(
        iot_clock, "read_now_ms", lambda: int(dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp() * 1000)
    )
    with living_street(tmp_path, monkeypatch, days=days, seed=11, first=first) as (served, config):
        settings = load_settings(config, os.environ)
        for day in (first, first + dt.timedelta(days=1)):
            served.set_day(day)
            sync(settings, parse_as_of(day.isoformat()))
        served.set_day(first + dt.timedelta(days=days - 1))
        results = [
            sync(settings, parse_as_of((first + dt.timedelta(days=i)).isoformat())) for i in range(2, days)
        ]
    assert len(results) == 3  # every backfilled day ran to the end: none was stopped by the gate
    with warehouse(config) as con:
        volume = con.execute(
            "SELECT r.as_of, q.success, q.observed_json FROM meta.quality_results q JOIN meta.runs r USING (run_id) "
            "WHERE q.source = 'iot' AND q.stream = 'events' AND q.expectation = 'volume' ORDER BY r.as_of"
        ).fetchall()
    assert all(success for _, success, _ in volume)
    assert "a backfill or a late run" in volume[3][2]  # the day after the run that read the log late
