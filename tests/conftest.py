"""Shared fixtures: a simulated street, its HTTP servers, and real PostgreSQL/MariaDB databases.

Service-backed tests are marked ``postgres`` / ``mariadb``. Where the server is absent they skip with
the reason; with ``IB_REQUIRE_SERVICES=1`` (set by ``.ci/run``) an absent server is a failure instead.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

SEED = 7
AS_OF = dt.date(2026, 11, 20)
GRID_CLIENT = ("islandbridge-test", "grid-test-secret")
IOT_KEY = "iot-test-key"

# Hypothesis' timing limits (a 200 ms deadline per example, the too_slow health check) fail a property
# test when a loaded 2-core CI machine pauses once: no test here is about speed, so neither applies.
# A test's own @settings still overrides the other values.
settings.register_profile("islandbridge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("islandbridge")


@pytest.fixture(scope="session")
def street_dir(tmp_path_factory) -> Path:
    """A 300-resident simulated street (all four systems and the truth), generated once per session."""
    from islandbridge.devtools.simulator import generate

    out = tmp_path_factory.mktemp("street")
    generate(out, residents=300, seed=SEED, as_of=AS_OF)
    return out


@pytest.fixture
def grid_server(street_dir):
    """The simulated grid platform on a free loopback port; fresh state for each test."""
    from islandbridge.devtools.simulator.servers import GridServer

    with GridServer(street_dir / "grid", client_id=GRID_CLIENT[0], client_secret=GRID_CLIENT[1]) as server:
        yield server


@pytest.fixture
def iot_server(street_dir):
    """The simulated IoT platform on a free loopback port; fresh state for each test."""
    from islandbridge.devtools.simulator.servers import IotServer

    with IotServer(street_dir / "iot", api_key=IOT_KEY) as server:
        yield server


def _require_services() -> bool:
    return os.environ.get("IB_REQUIRE_SERVICES") == "1"


SERVICE_MARKERS = ("postgres", "mariadb", "airflow")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``IB_REQUIRE_SERVICES=1`` a service-backed test that skips, for whatever reason, fails."""
    report = yield
    required = _require_services() and any(item.get_closest_marker(m) for m in SERVICE_MARKERS)
    if required and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"IB_REQUIRE_SERVICES=1 does not allow this test to skip: {report.longrepr}"
    return report


def _unavailable(what: str, exc: Exception):
    reason = f"{what} is not reachable on loopback ({type(exc).__name__}: {exc})"
    if _require_services():
        pytest.fail(f"{reason}; IB_REQUIRE_SERVICES=1 makes this a failure", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database of our own, dropped afterwards."""
    import sqlalchemy as sa

    admin_url = os.environ.get(
        "IB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"ib_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "absent"
        _unavailable("PostgreSQL", exc)
    url = sa.make_url(admin_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def mariadb_url():
    """A fresh MariaDB database of our own (utf8mb4), dropped afterwards."""
    import sqlalchemy as sa

    admin_url = os.environ.get(
        "IB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    )
    name = f"ib_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            )
    except Exception as exc:  # noqa: BLE001
        _unavailable("MariaDB", exc)
    url = sa.make_url(admin_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def config(tmp_path, street_dir, grid_server, iot_server, monkeypatch):
    """A configuration for the simulated street and its servers, with the credentials in the environment."""
    from islandbridge.devtools.demo import write_config

    path = tmp_path / "islandbridge.yml"
    write_config(path, street=street_dir, grid_url=grid_server.base_url, iot_url=iot_server.base_url)
    text = path.read_text(encoding="utf-8").replace("islandbridge-demo", GRID_CLIENT[0])
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("IB_GRID_CLIENT_SECRET", GRID_CLIENT[1])
    monkeypatch.setenv("IB_IOT_API_KEY", IOT_KEY)
    return path
