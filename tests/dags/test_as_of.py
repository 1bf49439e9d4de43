"""A run's as-of T: the ``as_of`` param, else the data interval's end, else the end of yesterday."""

from __future__ import annotations

import datetime as dt

import pytest

from islandbridge.config import LOCAL_TZ, resolve_as_of
from islandbridge.errors import ConfigError

UTC = dt.UTC
INTERVAL_END = dt.datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # midnight of the 21st in Shanghai
STARTED = dt.datetime(2026, 12, 5, 20, 30, tzinfo=UTC)  # 04:30 on the 6th in Shanghai


def test_an_explicit_as_of_wins_over_the_data_interval_and_the_start():
    assert resolve_as_of("2026-11-18", INTERVAL_END, STARTED) == dt.datetime(2026, 11, 19, tzinfo=LOCAL_TZ)
    assert resolve_as_of("20261118", None, None) == dt.datetime(2026, 11, 19, tzinfo=LOCAL_TZ)


def test_without_as_of_a_scheduled_run_is_as_of_its_data_interval_end():
    assert resolve_as_of(None, INTERVAL_END, STARTED) == INTERVAL_END
    assert resolve_as_of("", INTERVAL_END, STARTED) == INTERVAL_END  # an emptied trigger-form field


def test_a_manual_run_with_neither_is_as_of_the_end_of_yesterday_in_shanghai():
    # 20:30 UTC on the 5th is already the 6th in Shanghai: yesterday is the 5th, which ends at 00:00 the 6th
    assert resolve_as_of(None, None, STARTED) == dt.datetime(2026, 12, 6, tzinfo=LOCAL_TZ)
    assert resolve_as_of(None, None, dt.datetime(2026, 12, 5, 15, 59, tzinfo=UTC)) == dt.datetime(
        2026, 12, 5, tzinfo=LOCAL_TZ
    )


def test_nothing_to_resolve_from_or_a_bad_date_is_a_config_error():
    with pytest.raises(ConfigError, match="no as-of"):
        resolve_as_of(None, None, None)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        resolve_as_of("20 Nov", INTERVAL_END, STARTED)
