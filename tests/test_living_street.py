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
from islandbridge.devtools.simulator import simulate
from islandbridge.devtools.simulator.days import day_dir
from islandbridge.devtools.simulator.servers_days import LivingStreet
from islandbridge.landing import raw
from islandbridge.pipeline import load_settings, sync
from tests.conftest import GRID_CLIENT, IOT_KEY

FIRST = dt.date(2026, 11, 20)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(3)]


@pytest.mark.slow
def test_each_day_of_a_living_street_meets_the_report_targets(tmp_path, monkeypatch):
    from islandbridge.devtools.demo import write_config

    street = tmp_path / "street"
    simulate(street, residents=300, seed=7, days=len(DAYS), as_of=FIRST)
    monkeypatch.setenv("IB_GRID_CLIENT_SECRET", GRID_CLIENT[1])
    monkeypatch.setenv("IB_IOT_API_KEY", IOT_KEY)
    config = tmp_path / "run" / "islandbridge.yml"
    config.parent.mkdir()
    scores = {}
    with LivingStreet(
        street, day=DAYS[0], client_id=GRID_CLIENT[0], client_secret=GRID_CLIENT[1], api_key=IOT_KEY
    ) as served:
        write_config(config, street=served.live, grid_url=served.grid.base_url, iot_url=served.iot.base_url)
        text = config.read_text(encoding="utf-8").replace("islandbridge-demo", GRID_CLIENT[0])
        config.write_text(text, encoding="utf-8")
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
