"""Every report scored against the truth of a fresh 3,000-resident simulated street, synced end to end."""

from __future__ import annotations

import datetime as dt
import os
import re

import duckdb
import pytest

from islandbridge.devtools.reports_eval import score_reports, summary
from islandbridge.landing import raw
from islandbridge.warehouse.core import build_core
from islandbridge.warehouse.marts import build_marts

SEED = 5
RESIDENTS = 3000
AS_OF = dt.date(2026, 11, 20)
SECRETS = {"IB_GRID_CLIENT_SECRET": "street-test", "IB_IOT_API_KEY": "street-test"}


@pytest.fixture(scope="session")
def street_3000(tmp_path_factory):
    """(settings, truth folder) of a 3,000-resident street after extract, load and reconcile."""
    from islandbridge.config import parse_as_of
    from islandbridge.devtools.demo import write_config
    from islandbridge.devtools.simulator import generate
    from islandbridge.devtools.simulator.servers import GridServer, IotServer
    from islandbridge.pipeline import load_settings, sync

    out = tmp_path_factory.mktemp("street3000")
    street, config = out / "street", out / "run" / "islandbridge.yml"
    generate(street, residents=RESIDENTS, seed=SEED, as_of=AS_OF)
    config.parent.mkdir()
    with (
        GridServer(
            street / "grid", client_id="islandbridge-demo", client_secret=SECRETS["IB_GRID_CLIENT_SECRET"]
        ) as grid,
        IotServer(street / "iot", api_key=SECRETS["IB_IOT_API_KEY"]) as iot,
    ):
        write_config(config, street=street, grid_url=grid.base_url, iot_url=iot.base_url)
        settings = load_settings(config, {**os.environ, **SECRETS})
        sync(settings, parse_as_of(AS_OF.isoformat()), deliver=False)
    return settings, street / "truth"


@pytest.fixture(scope="session")
def built(street_3000):
    """The core and the marts built for the street's as-of; yields (connection, scores)."""
    from islandbridge.config import parse_as_of

    settings, truth = street_3000
    t = parse_as_of(AS_OF.isoformat())
    con = duckdb.connect(str(settings.warehouse_path))
    build_core(con, t, raw.run_id_for(t), settings.warehouse_path.parent / "events")
    build_marts(con, t, raw.run_id_for(t), settings.reports)
    scores = score_reports(con, truth)
    print("\n" + "\n".join(summary(scores)))
    yield con, scores
    con.close()


@pytest.mark.slow
def test_every_report_meets_its_target(built):
    """Issue #7's targets on a 3,000-resident street: every report's precision and recall >= 0.98, and
    nobody silent is missed (elderly_alerts recall = 1.0)."""
    _, scores = built
    assert scores["elderly_alerts"]["recall"] == 1.0, scores["elderly_alerts"]
    low = {
        report: (s["precision"], s["recall"])
        for report, s in scores.items()
        if s["precision"] < 0.98 or s["recall"] < 0.98
    }
    assert not low, {report: scores[report] for report in low}


@pytest.mark.slow
def test_no_name_id_number_or_phone_reaches_the_core_or_the_marts(built, street_3000):
    con, _ = built
    _, truth = street_3000
    people = con.execute(f"SELECT name, id_number FROM read_csv('{truth / 'persons.csv'}', all_varchar=true)")
    names, numbers = set(), set()
    for name, number in people.fetchall():
        names.add(name)
        numbers.add(number)
    texts = set()
    for schema, table, column in con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema IN ('core', 'marts') AND data_type = 'VARCHAR'"
    ).fetchall():
        texts.update(
            r[0] for r in con.execute(f'SELECT DISTINCT "{column}" FROM {schema}.{table}').fetchall() if r[0]
        )
    assert not texts & names
    assert not [t for t in texts if any(n in t for n in re.findall(r"[0-9]{15,18}X?", t) if n in numbers)]
    assert not [t for t in texts if re.search(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])", t)]


@pytest.mark.slow
def test_rebuilding_the_street_changes_no_table_and_no_event_file(built, street_3000):
    from islandbridge.config import parse_as_of

    con, _ = built
    settings, _ = street_3000
    t = parse_as_of(AS_OF.isoformat())
    tables = (
        "core.persons",
        "core.residency",
        "core.roster_entries",
        "core.device_event_files",
        "marts.elderly_alerts",
        "marts.incidents_by_building",
    )
    before = {name: con.execute(f"SELECT * FROM {name}").fetchall() for name in tables}
    build_core(con, t, raw.run_id_for(t), settings.warehouse_path.parent / "events")
    build_marts(con, t, raw.run_id_for(t), settings.reports)
    assert {name: con.execute(f"SELECT * FROM {name}").fetchall() for name in tables} == before
