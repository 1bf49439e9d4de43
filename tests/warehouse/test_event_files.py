"""Several Parquet files a day: late events beside a day's file, not a rewrite of it (issue #17).

A run that delivers late events to a day already written adds a file to that day and leaves the day's
files as they are; the view, de-duplication, retention, garbage collection and the migration of a
warehouse keyed by day alone all see every file of a day.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from islandbridge.config import Retention
from islandbridge.landing import raw
from islandbridge.warehouse import device_events, retention
from tests.warehouse.test_core import T1, T2, build, event, files_on_disk
from tests.warehouse.test_core_fixtures import HOUR_MS, TinyWarehouse, as_of, ms

T3 = as_of(dt.date(2026, 11, 21))
DAY1 = dt.date(2026, 11, 19)


@pytest.fixture
def w(tmp_path):
    warehouse = TinyWarehouse(tmp_path / "wh.duckdb")
    yield warehouse
    warehouse.close()


def _files(w) -> list[tuple]:
    return w.con.execute(
        "SELECT day, file, rows, runs FROM core.device_event_files ORDER BY day, file"
    ).fetchall()


def _day_files(events, day: dt.date) -> dict[str, bytes]:
    return {k: v for k, v in files_on_disk(events).items() if k.startswith(f"day={day.isoformat()}/")}


def _first_day_and_a_late_run(w, events) -> tuple[str, str, dict[str, bytes]]:
    """Day 1 written by run 1 (three events); run 2 then delivers one late event to it and one of its own."""
    r1, r2 = w.run(T1), w.run(T2)
    w.add("iot__events", r1, [event(f"a{n}", ms(T1) - n * HOUR_MS) for n in range(1, 4)])
    build(w, T1, events)
    first = _day_files(events, DAY1)
    w.add("iot__events", r2, [event("late", ms(T1) - 2 * HOUR_MS - 1), event("fresh", ms(T2) - HOUR_MS)])
    build(w, T2, events)
    return r1, r2, first


def test_late_events_land_in_a_further_file_and_the_days_file_is_not_rewritten(w, tmp_path):
    events = tmp_path / "events"
    r1, r2, first = _first_day_and_a_late_run(w, events)
    assert len(first) == 1
    day1 = _day_files(events, DAY1)
    assert {k: v for k, v in day1.items() if k in first} == first  # the day's file, byte for byte
    assert len(day1) == 2
    listed = {f: (rows, runs) for d, f, rows, runs in _files(w) if d == DAY1}
    assert {f: listed[f] for f in first} == {next(iter(first)): (3, [r1])}
    assert sorted(listed.values()) == [(1, [r2]), (3, [r1])]
    ids = w.con.execute("SELECT event_id, day, is_late FROM core.device_events ORDER BY event_id").fetchall()
    assert ids == [
        ("a1", DAY1, False),
        ("a2", DAY1, False),
        ("a3", DAY1, False),
        ("fresh", dt.date(2026, 11, 20), False),
        ("late", DAY1, True),
    ]
    # the same as-of again: the same files, the same rows
    before = w.snapshot("core.device_event_files", "core.device_events"), files_on_disk(events)
    build(w, T2, events)
    assert (w.snapshot("core.device_event_files", "core.device_events"), files_on_disk(events)) == before


def test_a_late_copy_of_an_event_the_day_holds_is_not_counted_twice(w, tmp_path):
    events = tmp_path / "events"
    r1, r2, r3 = w.run(T1), w.run(T2), w.run(T3)
    w.add("iot__events", r1, [event("e1", ms(T1) - HOUR_MS, value=1), event("e2", ms(T1) - 2 * HOUR_MS)])
    build(w, T1, events)
    first = files_on_disk(events)
    # run 2 repeats e1 (another value) and nothing else for day 1: the day gains no file
    w.add("iot__events", r2, [event("e1", ms(T1) - HOUR_MS, value=2), event("f1", ms(T2) - HOUR_MS)])
    build(w, T2, events)
    assert _day_files(events, DAY1) == first
    # run 3 repeats e2 and delivers one new late event to day 1: only the new one goes to a second file
    w.add("iot__events", r3, [event("e2", ms(T1) - 2 * HOUR_MS), event("e3", ms(T1) - 3 * HOUR_MS)])
    build(w, T3, events)
    rows = w.con.execute(
        "SELECT event_id, received_run, reading FROM core.device_events WHERE day = ? ORDER BY event_id",
        [DAY1],
    ).fetchall()
    assert rows == [("e1", r1, 1.0), ("e2", r1, None), ("e3", r3, None)]
    assert sorted((rows, runs) for d, _, rows, runs in _files(w) if d == DAY1) == [(1, [r3]), (2, [r1])]
    duplicates = w.con.execute("SELECT run_id, duplicates FROM core.device_event_runs ORDER BY 1").fetchall()
    assert duplicates == [(r1, 0), (r2, 1), (r3, 1)]


def test_an_earlier_copy_merged_later_rewrites_only_the_file_that_held_the_later_one(w, tmp_path):
    """The first-delivered copy of an event is kept: when a run merged late brings an earlier copy, the
    file holding the later one is rewritten without it; the day's other files stay as they are."""
    events = tmp_path / "events"
    r1, r2, r3 = w.run(T1), w.run(T2), w.run(T3)
    w.add("iot__events", r2, [event("a", ms(T1) - HOUR_MS)])
    build(w, T2, events)
    untouched = _day_files(events, DAY1)
    w.add("iot__events", r3, [event("b", ms(T1) - 2 * HOUR_MS), event("dup", ms(T1) - 3 * HOUR_MS, value=3)])
    build(w, T3, events)
    w.add("iot__events", r1, [event("dup", ms(T1) - 3 * HOUR_MS, value=1)])  # run 1's slice lands late
    build(w, T3, events)  # merges run 1, pending since it was never merged
    rows = w.con.execute(
        "SELECT event_id, received_run, reading FROM core.device_events ORDER BY event_id"
    ).fetchall()
    assert rows == [("a", r2, None), ("b", r3, None), ("dup", r1, 1.0)]
    day1 = _day_files(events, DAY1)
    assert {k: v for k, v in day1.items() if k in untouched} == untouched and len(day1) == 2
    assert sorted(runs for d, _, _, runs in _files(w) if d == DAY1) == [[r1, r3], [r2]]
    assert w.con.execute("SELECT sum(duplicates) FROM core.device_event_runs").fetchall() == [(1,)]


def test_a_day_over_its_file_limit_merges_its_smaller_files(w, tmp_path, monkeypatch):
    monkeypatch.setattr(device_events, "MAX_FILES_PER_DAY", 2)
    events = tmp_path / "events"
    r1, r2, first = _first_day_and_a_late_run(w, events)
    r3 = w.run(T3)
    w.add("iot__events", r3, [event("later", ms(T1) - 4 * HOUR_MS - 1)])
    build(w, T3, events)
    day1 = _day_files(events, DAY1)
    assert {k: v for k, v in day1.items() if k in first} == first and len(day1) == 2  # the largest stays
    assert sorted((rows, runs) for d, _, rows, runs in _files(w) if d == DAY1) == [(2, [r2, r3]), (3, [r1])]
    assert w.con.execute("SELECT count(*) FROM core.device_events WHERE day = ?", [DAY1]).fetchall() == [(5,)]


def test_retention_drops_every_file_of_an_old_day(w, tmp_path):
    events = tmp_path / "events"
    _first_day_and_a_late_run(w, events)
    assert [d for d, *_ in _files(w)] == [DAY1, DAY1, dt.date(2026, 11, 20)]  # two files on day 1
    policy = Retention(device_events_days=1)
    counts = retention.prune(
        w.con, retention.window(w.con, policy), policy, tmp_path / "no-vault.duckdb", events, apply=True
    )
    assert (counts["device_event_days"], counts["device_events"]) == (1, 4)
    assert [d for d, *_ in _files(w)] == [dt.date(2026, 11, 20)]
    assert [p.split("/")[0] for p in files_on_disk(events)] == ["day=2026-11-20"]
    assert w.con.execute("SELECT event_id FROM core.device_events").fetchall() == [("fresh",)]


def test_garbage_collection_keeps_every_live_file_of_a_day_and_removes_the_rest(w, tmp_path):
    events = tmp_path / "events"
    _first_day_and_a_late_run(w, events)
    live = {f for _, f, _, _ in _files(w)}
    (events / f"day={DAY1.isoformat()}" / "events-0123456789abcdef.parquet").write_bytes(
        b"left by a killed build"
    )
    (events / f"day={DAY1.isoformat()}" / ".tmp-x.parquet").write_bytes(b"half written")
    assert device_events.EventStore(events).collect_garbage(w.con) == 2
    assert set(files_on_disk(events)) == live and len(live) == 3


def test_a_warehouse_keyed_by_day_alone_is_migrated_by_its_next_build(w, tmp_path):
    """The previous layout: one file a day, core.device_event_files keyed by day."""
    events = tmp_path / "events"
    r1, r2 = w.run(T1), w.run(T2)
    w.add("iot__events", r1, [event("a", ms(T1) - HOUR_MS)])
    build(w, T1, events)
    listed = _files(w)
    saved = w.con.execute("SELECT * FROM core.device_event_files").fetchall()
    w.con.execute("DROP TABLE core.device_event_files")
    w.con.execute(
        "CREATE TABLE core.device_event_files (day DATE PRIMARY KEY, file VARCHAR NOT NULL, rows BIGINT NOT NULL, "
        "sha256 VARCHAR NOT NULL, runs VARCHAR[])"
    )
    w.con.executemany("INSERT INTO core.device_event_files VALUES (?, ?, ?, ?, ?)", saved)
    w.add("iot__events", r2, [event("late", ms(T1) - 2 * HOUR_MS)])
    build(w, T2, events)
    key = w.con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = 'device_event_files' "
        "AND constraint_type = 'PRIMARY KEY'"
    ).fetchall()
    assert key == [(["day", "file"],)]
    assert [f for f in _files(w) if f[1] == listed[0][1]] == listed  # the old day file is still listed
    assert len(_files(w)) == 2
    assert w.con.execute("SELECT event_id FROM core.device_events ORDER BY 1").fetchall() == [
        ("a",),
        ("late",),
    ]


def test_a_second_warehouse_file_sharing_the_events_folder_never_deletes_the_owners_day_files(w, tmp_path):
    """Two .duckdb files in one folder (or a cp -a copy through a linked events/): only the owner cleans."""
    events = tmp_path / "events"
    _first_day_and_a_late_run(w, events)
    w.con.execute("CHECKPOINT")
    before = files_on_disk(events)
    shutil.copyfile(w.path, tmp_path / "other.duckdb")
    policy = Retention(device_events_days=1)
    with raw.connect(str(tmp_path / "other.duckdb")) as other:
        counts = retention.prune(
            other, retention.window(other, policy), policy, tmp_path / "no-vault.duckdb", events, apply=True
        )
        assert counts["device_event_days"] == 1  # its own listing shrinks; the owner's files stay
    assert files_on_disk(events) == before
