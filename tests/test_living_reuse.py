"""Reusing normalised records (issue #17) changes nothing: day by day, incremental equals full.

A 300-resident street lives four days, then a fifth day passes without change; each day is synced in
order (reconcile reusing the normalised form of every record unchanged since the day before,
`identity.reuse`). After each day, a copy of the warehouse and the vault is reconciled again for that day
with ``full=True`` (every record normalised afresh): the person keys, the identity map and the review
pairs must be the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.identity.reconcile import reconcile
from islandbridge.pipeline import load_settings, sync
from tests.helpers import allow_a_day_without_events, days_then_one_unchanged, living_street

FIRST = dt.date(2026, 11, 20)
CHANGING_DAYS = 4


def _identity(path) -> dict:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            "map": con.execute("SELECT * FROM core.identity_map ORDER BY ALL").fetchall(),
            "review": con.execute("SELECT * FROM core.identity_review ORDER BY ALL").fetchall(),
        }


def _full_copy(settings, day: dt.date, into) -> tuple[dict, dict]:
    """Reconcile a copy of the warehouse and vault again for ``day``, normalising every record."""
    into.mkdir()
    copy = dataclasses.replace(
        settings, warehouse_path=into / "warehouse.duckdb", vault_path=into / "private" / "vault.duckdb"
    )
    copy.vault_path.parent.mkdir()
    shutil.copyfile(settings.warehouse_path, copy.warehouse_path)
    shutil.copyfile(settings.vault_path, copy.vault_path)
    summary = reconcile(copy, parse_as_of(day.isoformat()), full=True)
    return summary, _identity(copy.warehouse_path)


@pytest.mark.slow
def test_incremental_reconcile_equals_a_full_one_on_every_day(tmp_path, monkeypatch):
    days = days_then_one_unchanged(FIRST, CHANGING_DAYS)
    reused = []
    with living_street(tmp_path, monkeypatch, days=CHANGING_DAYS, seed=5, first=FIRST) as (served, config):
        allow_a_day_without_events(config)
        settings = load_settings(config, os.environ)
        for as_of_day, street_day in days:
            served.set_day(street_day)
            summary = sync(settings, parse_as_of(as_of_day.isoformat()), deliver=False)["identity"]
            reused.append(summary["normalised"])
            full, expected = _full_copy(settings, as_of_day, tmp_path / f"full-{as_of_day}")
            assert full["normalised"]["reused"] == 0, full["normalised"]
            assert _identity(settings.warehouse_path) == expected, as_of_day
            assert full["persons"] == summary["persons"] and full["churn"] == summary["churn"]
    assert reused[0]["reused"] == 0, reused
    assert all(day["reused"] > day["normalised"] for day in reused[1:]), reused
    assert reused[-1]["normalised"] < reused[-2]["normalised"], reused
