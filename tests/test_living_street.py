"""A street that lives, synced day by day (issue #13): each day's reports against that day's truth.

Three days of a 300-resident living street are served one after the other (``LivingStreet.set_day``)
and synced in order through ``islandbridge.pipeline.sync``; after each day the person-level reports
are scored against that day's truth (``devtools.reports_eval.score_reports``).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from islandbridge.config import parse_as_of
from islandbridge.devtools.reports_eval import PERSONAL, score_reports
from islandbridge.devtools.simulator.days import day_dir
from islandbridge.landing import raw
from islandbridge.pipeline import load_settings, sync
from tests.helpers import living_street

FIRST = dt.date(2026, 11, 20)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(3)]


@pytest.mark.slow
def test_each_day_of_a_living_street_meets_the_report_targets(tmp_path, monkeypatch):
    street = tmp_path / "street"
    scores = {}
    with living_street(tmp_path, monkeypatch, days=len(DAYS), seed=7, first=FIRST) as (served, config):
        settings = load_settings(config, os.environ)
        for day in DAYS:
            served.set_day(day)
            sync(settings, parse_as_of(day.isoformat()))
            con = raw.connect(str(settings.warehouse_path), read_only=True)
            try:
                scores[day] = score_reports(con, day_dir(street, day) / "truth")
            finally:
                con.close()
    for day, by_report in scores.items():
        for report in (*PERSONAL, "subsidy_after_exit"):
            got = by_report[report]
            assert got["precision"] >= 0.98 and got["recall"] >= 0.98, (day, report, got)
    # the street did change: a person recovered on day 3, so day 3 has one alert fewer than day 1
    assert scores[DAYS[-1]]["elderly_alerts"]["expected"] != scores[DAYS[0]]["elderly_alerts"]["expected"]
