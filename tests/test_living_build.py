"""The daily build by changed keys equals a full build, day by day, on a living street (issue #17).

A 300-resident street lives three days, then a fourth passes without change; each day is synced in order
(the build keeping the residency history of unchanged registry rows, `warehouse.incremental`). After each
day, a copy of the warehouse and its event files is built again for that day with ``full=True`` and the
pending events spooled to Parquet (the path a large merge takes): every table of ``core`` and ``marts``
must be the same, row for row in the same order; the device events the same rows (every column), day by
day, in the view and in the day files. How a day's rows are split among its files may differ: the daily
build puts a day's late events in a further file of the day, the full build writes each day in one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.pipeline import build, events_dir
from islandbridge.warehouse import device_events
from tests.helpers import each_day_synced, event_rows_by_day

FIRST = dt.date(2026, 11, 20)
CHANGING_DAYS = 3


def _tables(path) -> dict[str, list]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('core', 'marts') AND table_name NOT LIKE 'identity%' "
            "AND table_name NOT IN ('person_key_redirects', 'device_event_files', 'device_events') ORDER BY 1"
        ).fetchall()
        tables = {n: con.execute(f"SELECT * FROM {n}").fetchall() for (n,) in names}
        tables["core.device_events"] = con.execute("SELECT * FROM core.device_events ORDER BY ALL").fetchall()
        return tables


def _mode(path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT mode FROM meta.core_state").fetchall()[0][0]


def _full_copy(settings, day: dt.date, into, monkeypatch):
    """Build a copy of the warehouse and its event files again for ``day``, whole, spooling the events."""
    into.mkdir()
    copy = dataclasses.replace(settings, warehouse_path=into / "warehouse" / "warehouse.duckdb")
    copy.warehouse_path.parent.mkdir()
    shutil.copyfile(settings.warehouse_path, copy.warehouse_path)
    shutil.copytree(events_dir(settings), events_dir(copy))
    shutil.copytree(settings.warehouse_path.parent / "raw", copy.warehouse_path.parent / "raw")
    with monkeypatch.context() as m:
        m.setattr(device_events, "SPOOL_ABOVE_ROWS", 0)
        build(copy, parse_as_of(day.isoformat()), full=True)
    return copy


@pytest.mark.slow
def test_the_build_by_changed_keys_equals_a_full_build_on_every_day(tmp_path, monkeypatch):
    modes, grew = [], []
    days = each_day_synced(tmp_path, monkeypatch, changing=CHANGING_DAYS, seed=5, first=FIRST)
    for settings, as_of_day, _summary in days:
        modes.append(_mode(settings.warehouse_path))
        daily = _tables(settings.warehouse_path)
        grew.append(len(daily["core.residency"]))
        copy = _full_copy(settings, as_of_day, tmp_path / f"full-{as_of_day}", monkeypatch)
        assert _mode(copy.warehouse_path) == "full"
        assert _tables(copy.warehouse_path) == daily, as_of_day
        daily_events = event_rows_by_day(settings.warehouse_path, events_dir(settings))
        assert event_rows_by_day(copy.warehouse_path, events_dir(copy)) == daily_events, as_of_day
        assert sum(map(len, daily_events.values())) == len(daily["core.device_events"]) > 0
    assert modes == ["full"] + ["by_keys"] * CHANGING_DAYS, modes
    assert grew[1] > grew[0], grew  # the street changed: new residency versions were kept by key
