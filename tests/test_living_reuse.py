"""Reusing normalised records and scored pairs (issue #17) changes nothing: day by day, incremental
equals full.

A 300-resident street lives four days, then a fifth day passes without change; each day is synced in
order (reconcile reusing the normalised form of every record unchanged since the day before,
`identity.reuse`, and the kept score of every candidate pair of two unchanged records,
`identity.scoring`). After each day, a copy of the warehouse and the vault (with the linkage model's
kept name frequencies, which belong to the model) is reconciled again for that day with ``full=True``
(every record normalised and every pair scored afresh): the person keys, the identity map and the review
pairs must be the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.identity.reconcile import reconcile
from tests.helpers import copy_vault, each_day_synced

FIRST = dt.date(2026, 11, 20)
CHANGING_DAYS = 4


def _identity(path) -> dict:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            "map": con.execute("SELECT * FROM core.identity_map ORDER BY ALL").fetchall(),
            "review": con.execute("SELECT * FROM core.identity_review ORDER BY ALL").fetchall(),
        }


def _full_copy(settings, day: dt.date, into) -> tuple[dict, dict]:
    """Reconcile a copy of the warehouse and vault (and the model's name frequencies) again for ``day``,
    normalising every record and scoring every pair."""
    into.mkdir()
    copy = dataclasses.replace(
        settings, warehouse_path=into / "warehouse.duckdb", vault_path=into / "private" / "vault.duckdb"
    )
    shutil.copyfile(settings.warehouse_path, copy.warehouse_path)
    shutil.copytree(settings.warehouse_path.parent / "raw", copy.warehouse_path.parent / "raw")
    copy_vault(settings.vault_path, copy.vault_path)
    summary = reconcile(copy, parse_as_of(day.isoformat()), full=True)
    return summary, _identity(copy.warehouse_path)


@pytest.mark.slow
def test_incremental_reconcile_equals_a_full_one_on_every_day(tmp_path, monkeypatch):
    reused, scored = [], []
    days = each_day_synced(tmp_path, monkeypatch, changing=CHANGING_DAYS, seed=5, first=FIRST, deliver=False)
    for settings, as_of_day, run in days:
        summary = run["identity"]
        reused.append(summary["normalised"])
        scored.append(summary["scored"])
        full, expected = _full_copy(settings, as_of_day, tmp_path / f"full-{as_of_day}")
        assert full["normalised"]["reused"] == 0, full["normalised"]
        assert full["scored"]["kept"] == 0 and full["scored"]["changed"] == full["records"], full["scored"]
        assert _identity(settings.warehouse_path) == expected, as_of_day
        assert full["persons"] == summary["persons"] and full["churn"] == summary["churn"]
    assert reused[0]["reused"] == 0, reused
    assert all(day["reused"] > day["normalised"] for day in reused[1:]), reused
    assert reused[-1]["normalised"] < reused[-2]["normalised"], reused
    assert scored[0]["kept"] == 0, scored
    assert all(day["kept"] > day["scored"] for day in scored[1:]), scored
    assert scored[-1] == {"kept": scored[-1]["kept"], "scored": 0, "changed": 0}, scored
