"""Retention (issue #13): storage follows change, not days; the window keeps re-runs exact.

Four days of the simulated street are synced in order under ``retention: {days: 2, exports_days: 1,
reports_days: 1}``: the horizon is the second day's run. Retention must remove the merged raw device
events, superseded identity history, review pairs, source states and vault versions up to the horizon,
and the old export and report folders — while a day inside the window still re-runs (with
``--replay-forward``) to exactly the in-order result, and a day at the horizon is refused.
"""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import pytest
import yaml

from islandbridge.config import parse_as_of
from islandbridge.pipeline import load_settings, prune, sync
from islandbridge.warehouse.retention import RetentionError
from tests.helpers import living_street, snapshot, warehouse

DAYS = ("2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20")
HORIZON = "ib_20261118T160000Z"  # the newest run at least 2 days before the newest (11-20's)


def _with(config, **sections) -> None:
    text = yaml.safe_load(config.read_text(encoding="utf-8"))
    text.update(sections)
    config.write_text(yaml.safe_dump(text, allow_unicode=True), encoding="utf-8")


def _identity(config) -> dict:
    with warehouse(config) as con:
        return {
            "changes": con.execute("SELECT * FROM core.identity_map_changes ORDER BY ALL").fetchall(),
            "runs": con.execute(
                "SELECT * EXCLUDE (reconciled_at) FROM meta.identity_runs ORDER BY as_of"
            ).fetchall(),
        }


@pytest.fixture
def in_order(config):
    _with(config, retention={"days": 2, "exports_days": 1, "reports_days": 1})
    settings = load_settings(config, os.environ)
    for day in DAYS:
        sync(settings, parse_as_of(day))
    return settings, snapshot(config), _identity(config)


@pytest.mark.slow
def test_retention_removes_what_no_run_in_the_window_reads_and_keeps_the_rest(config, in_order):
    settings, _, _ = in_order
    with warehouse(config) as con:
        assert con.execute("SELECT value FROM meta.retention").fetchall() == [(HORIZON,)]
        raw_runs = {r[0] for r in con.execute("SELECT DISTINCT _run_id FROM raw.iot__events").fetchall()}
        assert not {r for r in raw_runs if r <= HORIZON}
        # the merged events of the pruned runs stay in the day files behind core.device_events
        kept = con.execute(
            "SELECT count(*) FROM core.device_events WHERE received_run = 'ib_20261117T160000Z'"
        ).fetchall()[0][0]
        assert kept > 0
        # identity history up to the horizon: one (non-removed) change per record at most
        assert not con.execute(
            "SELECT system, record_key FROM core.identity_map_changes c JOIN meta.identity_runs r USING "
            "(run_id) WHERE r.as_of <= ? GROUP BY ALL HAVING count(*) > 1 OR bool_or(removed)",
            [parse_as_of(DAYS[1])],
        ).fetchall()
        assert con.execute(
            "SELECT run_id, history FROM meta.identity_runs ORDER BY as_of LIMIT 2"
        ).fetchall() == [("ib_20261117T160000Z", False), (HORIZON, True)]
        assert not con.execute("SELECT * FROM core.identity_review WHERE run_id <= ?", [HORIZON]).fetchall()
        logged = dict(con.execute("SELECT item, sum(removed) FROM meta.retention_log GROUP BY 1").fetchall())
        registry_tables = con.execute("SELECT count(*) FROM raw.registry__t_jm").fetchall()[0][0]
    assert logged["raw_device_events"] > 0 and logged["identity_review"] > 0
    assert registry_tables > 0  # record history is change, kept
    with duckdb.connect(str(settings.vault_path), read_only=True) as vault:
        runs = {r[0] for r in vault.execute("SELECT DISTINCT run_id FROM records").fetchall()}
    assert "ib_20261117T160000Z" in runs  # day 1's versions still newest for most records: kept
    exports = sorted(p.name for p in (config.parent / "exports" / "street_office").iterdir())
    assert exports == ["2026-11-20", "2026-11-21"]
    reports = sorted(p.name for p in (config.parent / "warehouse" / "reports").iterdir())
    assert reports == ["ib_20261119T160000Z", "ib_20261120T160000Z"]
    assert not list((config.parent / "landing").glob("ib_*"))
    again = prune(settings)  # a dry run after the run's own prune: nothing left to remove
    assert not any(again["removed"].values()) and again["applied"] is False


@pytest.mark.slow
def test_inside_the_window_a_day_replays_forward_exactly_and_beyond_it_is_refused(config, in_order):
    settings, state, identity = in_order
    with pytest.raises(RetentionError, match=r"beyond the retention window.*from 2026-11-19 on"):
        sync(settings, parse_as_of(DAYS[1]))
    assert snapshot(config) == state  # refused before anything changed
    summary = sync(settings, parse_as_of(DAYS[2]), replay_forward=True)
    assert [r["run_id"] for r in summary["replayed"]] == ["ib_20261120T160000Z"]
    assert _identity(config) == identity
    assert snapshot(config) == state


@pytest.mark.slow
def test_two_days_without_change_grow_warehouse_and_vault_by_under_one_percent(tmp_path, monkeypatch):
    first = dt.date(2026, 11, 20)
    sizes = []
    with living_street(tmp_path, monkeypatch, days=2, seed=7, first=first) as (served, config):
        # no new device events on a day without change is expected, not a broken IoT feed
        _with(config, quality={"checks": {"iot.events.volume": {"severity": "warning"}}})
        settings = load_settings(config, os.environ)
        for offset, street_day in enumerate((first, first + dt.timedelta(days=1), None, None)):
            served.set_day(street_day or first + dt.timedelta(days=1))
            sync(settings, parse_as_of((first + dt.timedelta(days=offset)).isoformat()))
            sizes.append(settings.warehouse_path.stat().st_size + settings.vault_path.stat().st_size)
    assert sizes[3] < sizes[1] * 1.01, sizes
