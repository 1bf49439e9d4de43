"""Airflow's scheduler runs community_sync day after day on PostgreSQL metadata (issue #13).

The real Airflow 3 components (scheduler, dag-processor, the api-server's execution API) run as
subprocesses on a project-local ``AIRFLOW_HOME`` whose metadata is a PostgreSQL database of the test's
own. A 300-resident street lives for 7 days; before each day the served street moves to that day and
``airflow backfill create`` asks for that day's run, which the scheduler runs to success. Then two
manual triggers: with the ``as_of`` param (the last day again) and with nothing (the end of yesterday,
Asia/Shanghai). Every day's reports must meet their targets against that day's truth; per-day figures
(run time, rows read per source, person-key churn, precision/recall) are printed and written to
``scheduler_days.txt`` under the test's tmp folder.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from islandbridge.config import LOCAL_TZ, parse_as_of
from islandbridge.devtools.demo import GRID_CLIENT_ID, demo_credentials, write_config
from islandbridge.devtools.reports_eval import PERSONAL
from islandbridge.devtools.scheduled import AirflowServices, day_figures, figures_table
from islandbridge.devtools.simulator import simulate
from islandbridge.devtools.simulator.days import day_dir
from islandbridge.devtools.simulator.servers_days import LivingStreet
from islandbridge.landing import raw
from islandbridge.pipeline import load_settings

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAYS_LIVED = 7
REPORTS = (*PERSONAL, "subsidy_after_exit")
TARGET = 0.98
# The two manual runs take a few minutes; a run triggered with no date covers the day before the one it
# starts on (Asia/Shanghai), so they are not started closer than this to Shanghai's midnight.
TRIGGERS_TAKE = dt.timedelta(minutes=10)


@pytest.fixture
def airflow_metadata_url(postgres_url):
    """The test's own PostgreSQL database (``postgres_url``: skipped outside CI, a failure in it)."""
    if os.environ.get("IB_REQUIRE_SERVICES") != "1":
        pytest.importorskip("airflow", reason="apache-airflow is part of the locked dev environment")
    return postgres_url


def _figures(settings, run_id: str, truth: Path) -> dict:
    con = raw.connect(str(settings.warehouse_path), read_only=True, resources=settings.duckdb)
    try:
        return day_figures(con, run_id, truth, REPORTS)
    finally:
        con.close()


def _seconds(row: dict) -> float:
    return (row["end_date"] - row["start_date"]).total_seconds()


@pytest.mark.airflow
@pytest.mark.postgres
@pytest.mark.slow
def test_the_scheduler_runs_seven_days_by_backfill_then_manual_triggers(
    tmp_path, airflow_metadata_url, capsys
):
    # The street's last day is yesterday (Asia/Shanghai), the day a trigger without a date syncs. It lives
    # one day more: today, which is yesterday by the triggers when Shanghai's date changes meanwhile.
    yesterday = dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=1)
    days = [yesterday - dt.timedelta(days=DAYS_LIVED - 1 - i) for i in range(DAYS_LIVED)]
    street = tmp_path / "street"
    simulate(street, residents=300, seed=7, days=DAYS_LIVED + 1, as_of=days[0])
    creds = demo_credentials(tmp_path)
    settings_env = {**os.environ, **creds}
    config = tmp_path / "islandbridge.yml"
    rows: list[dict] = []
    table_file = tmp_path / "scheduler_days.txt"  # rewritten after each run: follow it with `tail -f`
    with LivingStreet(
        street,
        day=days[0],
        client_id=GRID_CLIENT_ID,
        client_secret=creds["IB_GRID_CLIENT_SECRET"],
        api_key=creds["IB_IOT_API_KEY"],
    ) as served:
        write_config(
            config,
            street=served.live,
            grid_url=served.grid.base_url,
            iot_url=served.iot.base_url,
            api_secrets_in_files=True,
        )
        settings = load_settings(config, environ=settings_env)
        with AirflowServices(tmp_path, DAGS, config, metadata_url=airflow_metadata_url) as airflow:
            for day in days:
                served.set_day(day)
                run = airflow.wait_for(airflow.backfill_day(day))
                truth = day_dir(street, day) / "truth"
                figures = _figures(settings, raw.run_id_for(parse_as_of(day.isoformat())), truth)
                rows.append({"day": day.isoformat(), "how": "backfill", "seconds": _seconds(run), **figures})
                _write_table(rows, table_file)
            yesterday = _yesterday_with_time_to_spare()
            if yesterday != served.day:  # the backfills ran over Shanghai's midnight
                served.set_day(yesterday)
            truth = day_dir(street, yesterday) / "truth"
            for how, conf in (("trigger", {"as_of": yesterday.isoformat()}), ("no date", None)):
                run = airflow.wait_for(airflow.trigger(how.replace(" ", "_"), conf))
                started = run["start_date"].astimezone(LOCAL_TZ).date()
                assert started - dt.timedelta(days=1) == yesterday, "the date changed in Shanghai meanwhile"
                figures = _figures(settings, raw.run_id_for(parse_as_of(yesterday.isoformat())), truth)
                assert figures["started_at"] >= run["start_date"], f"{how}: yesterday's run was not redone"
                rows.append({"day": yesterday.isoformat(), "how": how, "seconds": _seconds(run), **figures})
                _write_table(rows, table_file)
    with capsys.disabled():  # the figures in the CI output when all went well
        print(f"\n{table_file}:\n" + table_file.read_text(encoding="utf-8"))
    for row in rows:
        for report, (precision, recall) in row["scores"].items():
            assert precision >= TARGET and recall >= TARGET, (row["day"], row["how"], report)
    assert all(row["read"] for row in rows), "every run read its sources"


def _yesterday_with_time_to_spare() -> dt.date:
    """Yesterday in Asia/Shanghai, once ``TRIGGERS_TAKE`` is left before the next midnight there (waiting
    past it when less is): the day the run triggered with no date covers, whenever it starts."""
    now = dt.datetime.now(LOCAL_TZ)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), LOCAL_TZ)
    if midnight - now < TRIGGERS_TAKE:
        time.sleep((midnight - now).total_seconds() + 1)
    return dt.datetime.now(LOCAL_TZ).date() - dt.timedelta(days=1)


def _write_table(rows: list[dict], path: Path) -> None:
    lines = figures_table(rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[:1] + lines[-1:]))  # captured: pytest shows it when the test fails


def test_airflow_on_postgresql_uses_psycopg_for_both_engines_and_makes_no_sqlite_file(tmp_path):
    from islandbridge.devtools.demo import airflow_env

    url = "postgresql+psycopg://postgres@127.0.0.1:5432/ib_airflow"
    env = airflow_env(tmp_path, DAGS, tmp_path / "islandbridge.yml", {}, metadata_url=url)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == url
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == url  # asyncpg is not installed
    assert not (tmp_path / "airflow" / "airflow.db").exists()


def test_a_backfill_for_a_day_names_the_start_of_that_day_in_shanghai():
    from islandbridge.devtools.scheduled import logical_date

    assert logical_date(dt.date(2026, 11, 20)).isoformat() == "2026-11-20T00:00:00+08:00"


def test_the_figures_table_has_one_line_a_run_with_every_source_and_report():
    row = {
        "day": "2026-11-20",
        "how": "backfill",
        "seconds": 61.4,
        "read": {"registry": 425, "iot": 22714},
        "persons": 315,
        "churn": 2,
        "map_changes": 767,
        "scores": {"elderly_alerts": (1.0, 0.98), "subsidy_after_exit": (1.0, 1.0)},
    }
    head, line = figures_table([row])
    assert head.split()[:5] == ["day", "how", "secs", "iot", "registry"]
    assert line.split()[:9] == [
        "2026-11-20",
        "backfill",
        "61",
        "22714",
        "425",
        "315",
        "2",
        "767",
        "1.000/0.980",
    ]
