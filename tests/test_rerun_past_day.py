"""A past day synced again after later days ends where an in-order run ends (issue #13).

Four days of the simulated street are synced in order; then the second day is synced again with
``replay_forward``: every raw table, the run accounting, the core model and marts, the identity map
and history, and every export file (manifests without their wall-clock time) are as the in-order run
left them. Without ``replay_forward`` the day alone is recomputed and the later days are named.
"""

from __future__ import annotations

import os

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.pipeline import load_settings, sync
from tests.helpers import snapshot

DAYS = ("2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20")


def _identity(config) -> dict:
    path = config.parent / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            "map": con.execute("SELECT * FROM core.identity_map ORDER BY ALL").fetchall(),
            "history": con.execute("SELECT * FROM core.identity_map_changes ORDER BY ALL").fetchall(),
            "events": con.execute(
                "SELECT run_id, event, old_key, new_key FROM core.identity_events ORDER BY ALL"
            ).fetchall(),
            "runs": con.execute(
                "SELECT * EXCLUDE (reconciled_at) FROM meta.identity_runs ORDER BY as_of"
            ).fetchall(),
        }


@pytest.fixture
def in_order(config):
    settings = load_settings(config, os.environ)
    for day in DAYS:
        sync(settings, parse_as_of(day))
    return settings, snapshot(config), _identity(config)


@pytest.mark.slow
def test_a_past_day_replayed_forward_ends_where_the_in_order_run_ends(config, in_order):
    settings, warehouse, identity = in_order
    summary = sync(settings, parse_as_of(DAYS[1]), replay_forward=True)
    assert [r["run_id"] for r in summary["replayed"]] == ["ib_20261119T160000Z", "ib_20261120T160000Z"]
    assert _identity(config) == identity
    assert snapshot(config) == warehouse


@pytest.mark.slow
def test_a_past_day_alone_is_recomputed_and_the_later_days_are_named(config, in_order):
    settings, _, identity = in_order
    summary = sync(settings, parse_as_of(DAYS[1]))
    assert summary["later_days"] == ["ib_20261119T160000Z", "ib_20261120T160000Z"]
    assert summary["identity"]["forgotten"] == [
        "ib_20261118T160000Z",
        "ib_20261119T160000Z",
        "ib_20261120T160000Z",
    ]
    assert [r[0] for r in _identity(config)["runs"]] == ["ib_20261117T160000Z", "ib_20261118T160000Z"]
    sync(settings, parse_as_of(DAYS[3]))  # the next run reconciles the day between, in order
    assert _identity(config) == identity
