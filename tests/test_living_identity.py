"""Person keys on a living street (issue #16): they change only when evidence changes.

A 300-resident street lives for ten days (`simulate(..., days=10)`), served day by day
(``LivingStreet.set_day``) and synced in order through ``islandbridge.pipeline.sync``. Each day the map is
scored against that day's truth, and the run's churn by reason (``meta.identity_runs.changes``,
`identity.churn`) is read back. Recall on the last day is at least day 1's, precision holds, and every
split of a day is explained by a change in that day's data.
"""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import pandas as pd
import pytest

from islandbridge.config import parse_as_of
from islandbridge.devtools.simulator.days import day_dir
from islandbridge.identity.evaluate import score_assignment
from islandbridge.identity.explain import changes
from islandbridge.pipeline import load_settings, sync
from tests.helpers import living_street

FIRST = dt.date(2026, 11, 20)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(10)]


@pytest.mark.slow
def test_keys_change_only_with_evidence_over_ten_days(tmp_path, monkeypatch):
    street = tmp_path / "street"
    recall, precision = {}, {}
    with living_street(tmp_path, monkeypatch, days=len(DAYS), seed=3, first=FIRST) as (served, config):
        settings = load_settings(config, os.environ)
        for day in DAYS:
            served.set_day(day)
            sync(settings, parse_as_of(day.isoformat()), deliver=False)
            with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
                found = con.execute("SELECT system, record_key, person_key FROM core.identity_map").df()
            truth = pd.read_csv(day_dir(street, day) / "truth" / "records.csv", dtype=str)
            scores = score_assignment(found, truth)["overall"]
            recall[day], precision[day] = scores["recall"], scores["precision"]
    runs = changes(settings)["runs"]
    assert len(runs) == len(DAYS)
    for run in runs[1:]:
        churn = run["changes"]
        assert churn["splits_unexplained"] == 0, run
        assert churn["records_split"] + churn["records_merge"] <= run["churn"], run
        assert churn["records_new"] > 0, run  # the street did change every day
    assert recall[DAYS[-1]] >= recall[DAYS[0]], recall
    assert min(precision.values()) >= 0.999, precision
