"""Retention of landing folders (`islandbridge.delivery.retention.prune_folders`): what a loaded or stopped
run left goes, a run still pending stays, and a run as of a day far ahead of the clock (an as-of typed wrong,
whose landing holds identifiers in clear) goes instead of outliving every loaded run."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

from islandbridge.delivery.retention import prune_folders
from islandbridge.warehouse.retention import Window

NEWEST = "ib_20261120T160000Z"  # the newest loaded run: 2026-11-21 00:00 Shanghai
NOW = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)


def _settings(tmp_path):
    return SimpleNamespace(
        retention=SimpleNamespace(exports_days=30, reports_days=30),
        exports_dir=tmp_path / "exports",
        quality={},
        warehouse_path=tmp_path / "warehouse" / "islandbridge.duckdb",
        landing_url=(tmp_path / "landing").as_uri(),
    )


def test_landing_folders_of_loaded_and_far_ahead_runs_go_and_a_pending_one_stays(tmp_path, caplog):
    landing = tmp_path / "landing"
    runs = {
        "ib_20261119T160000Z": False,  # loaded before the newest: goes
        NEWEST: False,  # the newest loaded run's (emptied) folder: goes
        "ib_20261121T160000Z": True,  # tonight's run, extracted and not loaded yet: pending, stays
        "ib_20301231T160000Z": False,  # `--as-of 2031-01-01` typed for 2021: no such day yet, goes
    }
    for run in runs:
        (landing / run / "registry").mkdir(parents=True)
    win = Window(NEWEST, dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC), None, None)

    with caplog.at_level(logging.WARNING, logger="islandbridge"):
        preview = prune_folders(_settings(tmp_path), win, apply=False, now=NOW)
    assert preview["landing_runs"] == 3 and {p.name for p in landing.iterdir()} == set(runs)
    assert "ib_20301231T160000Z" in caplog.text and "ib_20261121T160000Z" not in caplog.text

    removed = prune_folders(_settings(tmp_path), win, apply=True, now=NOW)
    assert removed["landing_runs"] == 3
    assert sorted(p.name for p in landing.iterdir()) == [run for run, stays in runs.items() if stays]


def test_a_street_whose_days_lie_ahead_of_the_clock_keeps_its_next_days_run(tmp_path):
    """A simulated street synced up to 2030-01-01: its next day's extracted, not yet loaded run is pending,
    judged by the street's own newest loaded day, not by the clock."""
    landing = tmp_path / "landing"
    newest, pending = "ib_20291231T160000Z", "ib_20300101T160000Z"
    for run in (newest, pending):
        (landing / run / "registry").mkdir(parents=True)
    win = Window(newest, dt.datetime(2029, 12, 31, 16, tzinfo=dt.UTC), None, None)
    assert prune_folders(_settings(tmp_path), win, apply=True, now=NOW)["landing_runs"] == 1
    assert [p.name for p in landing.iterdir()] == [pending]
