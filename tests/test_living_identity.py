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
from islandbridge.devtools.simulator import simulate
from islandbridge.devtools.simulator.days import day_dir
from islandbridge.devtools.simulator.servers_days import LivingStreet
from islandbridge.identity.evaluate import score_assignment
from islandbridge.identity.explain import changes
from islandbridge.pipeline import load_settings, sync
from tests.conftest import GRID_CLIENT, IOT_KEY

FIRST = dt.date(2026, 11, 20)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(10)]


@pytest.mark.slow
def test_keys_change_only_with_evidence_over_ten_days(tmp_path, monkeypatch):
    from islandbridge.devtools.demo import write_config

    street = tmp_path / "street"
    simulate(street, residents=300, seed=3, days=len(DAYS), as_of=FIRST)
    monkeypatch.setenv("IB_GRID_CLIENT_SECRET", GRID_CLIENT[1])
    monkeypatch.setenv("IB_IOT_API_KEY", IOT_KEY)
    config = tmp_path / "run" / "islandbridge.yml"
    config.parent.mkdir()
    recall, precision = {}, {}
    with LivingStreet(
        street, day=DAYS[0], client_id=GRID_CLIENT[0], client_secret=GRID_CLIENT[1], api_key=IOT_KEY
    ) as served:
        write_config(config, street=served.live, grid_url=served.grid.base_url, iot_url=served.iot.base_url)
        text = config.read_text(encoding="utf-8").replace("islandbridge-demo", GRID_CLIENT[0])
        config.write_text(text, encoding="utf-8")
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
