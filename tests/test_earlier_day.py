"""A day synced before the warehouse's first synced day (QA: Airflow conf ``{"as_of": "2026-11-28"}`` on a
street synced 12-01..12-03 and 12-06) changes no person key, trains no model, and leaves the analysts on
the newest day.

The QA street: 400 residents, seed 5, the ``hard`` quirks, days 12-01..12-03 synced while the street is
served at 12-03, then 12-06. Syncing 11-28 saw a thinner street (card holders before their registry
rows); it used to name those persons by another anchor, which the re-reconciled later days kept — 7
persons re-keyed, their old keys nowhere — and trained a linkage model version 2 that every later day
then used. It also moved ``current.duckdb`` back to 11-28.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.delivery.snapshot import current_run
from islandbridge.devtools.simulator.quirks import profile
from islandbridge.landing.raw import run_id_for
from islandbridge.pipeline import load_settings, sync
from tests.helpers import living_street

FIRST = dt.date(2026, 12, 1)
LATEST = "2026-12-06"


def _keys(settings) -> dict:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT system, record_key, person_key FROM core.identity_map").fetchall()
        models = con.execute("SELECT version FROM meta.linkage_models ORDER BY version").fetchall()
        redirected = con.execute("SELECT old_key FROM core.person_key_redirects").fetchall()
    return {
        "map": {(s, k): p for s, k, p in rows},
        "models": models,
        "redirected": {r[0] for r in redirected},
    }


def _our_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and r.name.startswith(("islandbridge.pipeline", "islandbridge.identity"))
    ]


@pytest.mark.slow
def test_a_day_before_the_first_synced_day_rekeys_no_one_and_keeps_current(tmp_path, monkeypatch, caplog):
    hard = profile("hard")
    with living_street(tmp_path, monkeypatch, days=7, seed=5, first=FIRST, residents=400, quirks=hard) as (
        served,
        config,
    ):
        settings = load_settings(config, os.environ)
        served.set_day(dt.date(2026, 12, 3))
        for day in ("2026-12-01", "2026-12-02", "2026-12-03"):
            sync(settings, parse_as_of(day))
        served.set_day(dt.date.fromisoformat(LATEST))
        sync(settings, parse_as_of(LATEST))
        before = _keys(settings)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            early = sync(settings, parse_as_of("2026-11-28"))
        newest = run_id_for(parse_as_of(LATEST))
        assert current_run(settings.snapshots_dir) == newest == early["published"]["current"]
        assert (settings.snapshots_dir / f"{early['run_id']}.duckdb").is_file()
        assert early["identity"]["model_version"] == 1 and not early["identity"]["model_trained"]
        [warning] = [w for w in _our_warnings(caplog) if "a day before" in w]
        assert f"current snapshot stays at {newest}" in warning
        assert "--as-of 2026-11-28 --replay-forward" in warning
        sync(settings, parse_as_of(LATEST))
        after = _keys(settings)
    assert after["models"] == before["models"] == [(1,)]
    moved = {record for record, key in before["map"].items() if after["map"].get(record) != key}
    assert not moved
    lost = set(before["map"].values()) - set(after["map"].values()) - after["redirected"]
    assert not lost  # a key that did change would at least redirect (`identity.remembered.lost`)


@pytest.mark.slow
def test_a_day_before_a_synced_day_reads_the_later_days_once_and_warns_once(config, monkeypatch, caplog):
    """`sync` of a day before days already synced reads which later days are loaded once, and hands them
    to its publish (which warns) and to its summary (which names them); it used to read them twice."""
    from islandbridge.pipeline import notices

    settings = load_settings(config, os.environ)
    sync(settings, parse_as_of("2026-11-20"))
    read = []
    later_days = notices.later_days
    monkeypatch.setattr(notices, "later_days", lambda *a: read.append(a) or later_days(*a))
    with caplog.at_level(logging.WARNING):
        summary = sync(settings, parse_as_of("2026-11-19"))
    assert summary["later_days"] == ["ib_20261120T160000Z"] and len(read) == 1
    assert len([w for w in _our_warnings(caplog) if "a day before" in w]) == 1
