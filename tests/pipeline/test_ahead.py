"""The warning for a run as of an instant ahead of the clock, and the local day an as-of ends."""

from __future__ import annotations

import datetime as dt
import logging

from islandbridge.config import local_day, parse_as_of
from islandbridge.pipeline import warn_when_ahead
from islandbridge.warehouse.core import Moment


def test_the_ahead_warning_reads_the_clock_once(caplog):
    """The day it suggests is the one before the clock's reading, not before a later reading."""
    readings = iter([dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC)])
    with caplog.at_level(logging.WARNING, logger="islandbridge.pipeline"):
        warn_when_ahead(parse_as_of("2026-11-20"), clock=lambda: next(readings))
    assert "the day 2026-11-20 has not ended" in caplog.text and "such as 2026-11-19" in caplog.text


def test_an_as_of_at_local_midnight_ends_the_day_before():
    as_of = parse_as_of("2026-11-20")  # 2026-11-21 00:00 +08:00
    assert local_day(as_of) == dt.date(2026, 11, 20) == Moment.of(as_of).day
    assert local_day(as_of + dt.timedelta(microseconds=1)) == dt.date(2026, 11, 21)
    assert Moment.of(as_of).month_first == dt.date(2026, 11, 1)
