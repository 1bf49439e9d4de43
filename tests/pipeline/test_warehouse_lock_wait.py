"""A step that writes the warehouse waits (bounded by ``warehouse.lock_wait_s``) while another process holds
it, an operator's read-only query during a sync say, instead of failing at once; readers still fail fast."""

from __future__ import annotations

import logging

import duckdb
import pytest

from islandbridge import storage
from islandbridge.config import parse_settings
from islandbridge.errors import ConfigError
from islandbridge.landing import raw
from tests.helpers import held, hold
from tests.pipeline.test_duckdb_resources import BASE, ENV


def _settings(tmp_path, **warehouse):
    raw_config = {**BASE, "warehouse": {**BASE["warehouse"], **warehouse}}
    settings = parse_settings(raw_config, base_dir=tmp_path, environ=ENV)
    settings.warehouse_path.parent.mkdir(parents=True)
    raw.open_warehouse(settings).close()
    return settings


def test_lock_wait_defaults_to_two_minutes_and_must_be_seconds(tmp_path):
    assert _settings(tmp_path).warehouse_lock_wait_s == 120.0
    assert _settings(tmp_path / "b", lock_wait_s=5).warehouse_lock_wait_s == 5.0
    with pytest.raises(ConfigError, match=r"warehouse.lock_wait_s: seconds"):
        _settings(tmp_path / "c", lock_wait_s="soon")
    for n, never in enumerate((float("nan"), float("inf"), -1)):  # a NaN wait spun forever
        with pytest.raises(ConfigError, match=r"warehouse.lock_wait_s: seconds"):
            _settings(tmp_path / f"d{n}", lock_wait_s=never)


def test_a_write_open_waits_for_a_reader_and_opens_once_it_has_gone(tmp_path, monkeypatch, caplog):
    settings = _settings(tmp_path)
    reader = hold(settings.warehouse_path, read_only=True)  # `islandbridge sql` during a sync
    pauses = []

    def pause(seconds):  # the reader's query ends while the step waits
        pauses.append(seconds)
        if reader.returncode is None:
            reader.communicate("")

    monkeypatch.setattr(storage.time, "sleep", pause)
    try:
        with caplog.at_level(logging.WARNING, "islandbridge.storage"), raw.open_warehouse(settings) as con:
            con.execute("CREATE TABLE meta.written AS SELECT 1 AS x")
    finally:
        if reader.returncode is None:
            reader.communicate("")
    assert pauses
    waits = [r.getMessage() for r in caplog.records if "waiting up to 120 s" in r.getMessage()]
    assert len(waits) == 1 and f"PID {reader.pid}" in waits[0]


def test_a_write_open_ends_in_the_busy_error_once_the_wait_is_over(tmp_path):
    settings = _settings(tmp_path, lock_wait_s=0.3)
    with held(settings.warehouse_path, read_only=True) as pid, pytest.raises(duckdb.IOException) as error:
        raw.open_warehouse(settings)
    assert storage.lock_holder(error.value) == f"PID {pid}"


def test_a_reader_still_fails_at_once(tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    monkeypatch.setattr(storage.time, "sleep", lambda s: pytest.fail("a reader waited"))
    with held(settings.warehouse_path) as pid, pytest.raises(duckdb.IOException) as error:
        raw.open_warehouse(settings, read_only=True)
    assert storage.lock_holder(error.value) == f"PID {pid}"
