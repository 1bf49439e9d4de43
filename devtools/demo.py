"""``islandbridge demo``: the whole road on one machine, through Airflow.

Generates a simulated street, serves its grid and IoT platforms on loopback, writes a configuration that
names them (credentials by reference to environment variables, generated fresh for each demo), and runs
the ``community_sync`` DAG with ``airflow dags test`` against a project-local ``AIRFLOW_HOME`` with SQLite
metadata. Then prints a summary: the run and its day, the accounting per source, the quality result, the
reports' row counts and where the run report, quality report, snapshot and exports are.

Quiet by default: Airflow runs with its logging at WARNING (our steps' one-line logs still show, see
``islandbridge.logs``) and its own chatter (``db migrate``) goes to ``<workdir>/airflow/demo.log``;
``islandbridge demo -v`` shows all of it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import yaml

from islandbridge.config import LOCAL_TZ, local_day, parse_as_of
from islandbridge.errors import IslandbridgeError
from islandbridge.logs import VERBOSE_ENV
from islandbridge.pipeline import load_settings

GRID_CLIENT_ID = "islandbridge-demo"
# Airflow's own loggers (structlog namespaces) that narrate its workings at INFO: task groups, XComs,
# state changes, migrations. Their warnings and errors still show.
QUIET_AIRFLOW = "airflow=WARNING task=WARNING alembic=WARNING sqlalchemy=WARNING py.warnings=ERROR"
AIRFLOW_LOGGING = "islandbridge.devtools.airflow_logging.LOGGING_CONFIG"  # Airflow imports it, not the demo
# One key (or keyring) per purpose, never shared between purposes (docs/privacy.md).
KEY_FILES = {
    "quarantine": "quarantine.keys",
    "person_key": "person.key",
    "vault": "vault.keys",
    "dept:grid_centre": "dept_grid_centre.key",
    "dept:civil_affairs": "dept_civil_affairs.key",
    "dept:street_office": "dept_street_office.key",
}


def write_config(
    path: Path,
    *,
    street: Path,
    grid_url: str,
    iot_url: str,
    street_code: str = "511403001",
    api_secrets_in_files: bool = False,
) -> None:
    """Write a configuration for a simulated street (secrets are references, never values).

    Keys live in ``secrets/`` beside the file, made once and kept across demos (owner-only, never under
    version control): ``quarantine.keys`` seals quarantined rows; ``person.key`` is the MAC key of the
    person keys, which must not change for the keys to stay stable from run to run; ``vault.keys`` seals
    the identifier vault; ``dept_<name>.key`` makes each department's ``person_ref``.
    """
    for name in KEY_FILES.values():
        _ensure_keyring(path.parent / "secrets" / name)
    config = {
        "street": {"code": street_code},
        "landing": {"url": "landing"},
        "warehouse": {"path": "warehouse/warehouse.duckdb"},
        "vault": {"path": "private/vault.duckdb"},
        "audit": {"path": "private/audit/reidentification.jsonl"},
        "exports": {"dir": "exports"},
        "snapshots": {"dir": "warehouse/snapshots", "keep": 3},
        "keys": {purpose: {"file": f"secrets/{name}"} for purpose, name in KEY_FILES.items()},
        "sources": {
            "registry": {"kind": "sql_registry", "url": f"sqlite:///{street / 'registry' / 'rrs.sqlite'}"},
            "grid": {
                "kind": "grid_rest",
                "base_url": grid_url,
                "client_id": GRID_CLIENT_ID,
                "client_secret": _api_secret(
                    path, "grid_client_secret", "IB_GRID_CLIENT_SECRET", api_secrets_in_files
                ),
            },
            "civil": {"kind": "civil_files", "path": str(street / "civil")},
            "iot": {
                "kind": "iot_rest",
                "base_url": iot_url,
                "api_key": _api_secret(path, "iot_api_key", "IB_IOT_API_KEY", api_secrets_in_files),
            },
        },
    }
    header = (
        "# islandbridge configuration for a simulated street, written by `islandbridge demo`.\n"
        "# See docs/configuration.md for every key.\n"
    )
    path.write_text(header + yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


# The simulated platforms' credentials, kept beside the keys so the demo's street can be served and
# synced again (`islandbridge serve` reads them from the environment; docs/operations.md).
API_SECRET_FILES = {"IB_GRID_CLIENT_SECRET": "grid_client_secret", "IB_IOT_API_KEY": "iot_api_key"}
DEMO_PORTS = (8701, 8702)  # grid, IoT: the same as `islandbridge serve`'s defaults


def _api_secret(config: Path, name: str, env: str, in_file: bool) -> dict[str, str]:
    return {"file": f"secrets/{name}"} if in_file else {"env": env}


def demo_credentials(workdir: Path) -> dict[str, str]:
    """The simulated platforms' credentials: made once, kept owner-only in ``secrets/``, reused."""
    folder = workdir / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    values = {}
    for env, name in API_SECRET_FILES.items():
        path = folder / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
        values[env] = path.read_text(encoding="ascii").strip()
    return values


def _free(port: int) -> int:
    """``port`` when it is free on loopback, else 0 (any free port: the demo still runs, on other ports)."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _ensure_keyring(path: Path) -> None:
    from islandbridge.privacy.keys import new_keyring_text

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(new_keyring_text() + "\n")


def airflow_env(
    workdir: Path,
    dags_folder: Path,
    config: Path,
    extra: dict[str, str],
    verbose: int = 0,
    metadata_url: str | None = None,
) -> dict[str, str]:
    """The environment of a project-local Airflow: its own home, only our DAGs; its logging at WARNING
    unless ``verbose`` (our tasks' step lines are logged at INFO all the same). The metadata database is
    ``metadata_url`` (SQLAlchemy URL, e.g. PostgreSQL for a scheduler) or else SQLite in the home."""
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    if metadata_url is None:
        database = home / "airflow.db"  # holds connections and XComs: owner-only before Airflow opens it
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(database, 0o600)
        metadata_url = f"sqlite:///{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "ISLANDBRIDGE_CONFIG": str(config),
            # Airflow's handler lets INFO through (our steps' lines); its own loggers speak from WARNING
            # up (Python's `airflow` logger is raised by islandbridge.logs in each task).
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG" if verbose > 1 else "INFO",
            "AIRFLOW__LOGGING__NAMESPACE_LEVELS": "" if verbose else QUIET_AIRFLOW,
            VERBOSE_ENV: str(verbose),
            **extra,
        }
    )
    if metadata_url.startswith("postgresql+psycopg:"):  # psycopg 3 is async too; asyncpg is not installed
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = metadata_url
    if not verbose:  # deprecation and "could not import graphviz" warnings of Airflow's own modules
        env["PYTHONWARNINGS"] = "ignore"
        # and `dags test`'s own INFO lines, which namespace_levels does not reach (airflow_logging.py)
        env["AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS"] = AIRFLOW_LOGGING
    return env


def run_airflow(env: dict[str, str], *args: str, log: Path | None = None) -> None:
    """Run an ``airflow`` command; with ``log``, its output goes to that file instead of the terminal."""
    airflow = Path(sys.executable).with_name("airflow")
    if log is None:
        result = subprocess.run([str(airflow), *args], env=env, check=False)
    else:
        with log.open("a", encoding="utf-8") as out:
            result = subprocess.run(
                [str(airflow), *args], env=env, check=False, stdout=out, stderr=subprocess.STDOUT
            )
    if result.returncode != 0:
        where = f"its output is in {log}" if log else "see the output above"
        raise IslandbridgeError(
            f"`airflow {' '.join(args)}` failed with exit status {result.returncode}; {where}; "
            f"task logs are under {env['AIRFLOW__LOGGING__BASE_LOG_FOLDER']}"
        )


def dag_test_args(as_of: dt.date) -> list[str]:
    """``airflow dags test`` for the day ``as_of``: the run holds that day's logical date, D 00:00+08:00,
    as the scheduler's and a backfill's run for D do (docs/operations.md), and is as of the day's end
    through the ``as_of`` param. (Handed the day's end as its logical date, Airflow would give the run
    the logical date of D+1's run, and a backfill of D+1 would find it taken and make nothing.)"""
    logical = dt.datetime.combine(as_of, dt.time(), LOCAL_TZ)
    conf = json.dumps({"as_of": as_of.isoformat()})
    return ["dags", "test", "community_sync", logical.isoformat(), "--conf", conf]


# `dag.test` records the run's start as its logical date (days before the demo ran: the UI showed a run
# of 16 days) and gives it the data interval Airflow infers for a manual run, the day *before* the logical
# date. Through Airflow's models the run is given its real start and its day's interval, [D, D+1) at
# 00:00+08:00, as the scheduler's run for D has; its as-of is the `as_of` param's, the same instant.
_RECORD_RUN = """
import sys, datetime as dt
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
logical, started = (dt.datetime.fromisoformat(a) for a in sys.argv[1:3])
with create_session() as session:
    runs = session.query(DagRun).filter(DagRun.dag_id == "community_sync", DagRun.logical_date == logical)
    for run in runs:
        run.start_date = started
        run.data_interval_start, run.data_interval_end = logical, logical + dt.timedelta(days=1)
"""


def record_run(env: dict[str, str], logical_date: str, started: dt.datetime) -> None:
    """Give the demo's DAG run its real start (its duration in the UI is then real) and its day's data
    interval. Cosmetic: a failure is said and the demo goes on."""
    result = subprocess.run(
        [sys.executable, "-c", _RECORD_RUN, logical_date, started.isoformat()],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        print(
            f"[demo] could not record the run's start and interval in Airflow: {result.stderr.strip()[-300:]}"
        )


def run_demo(
    *,
    workdir: Path,
    residents: int,
    seed: int,
    as_of: dt.date,
    dags_folder: Path,
    verbose: int = 0,
    ports: tuple[int, int] = DEMO_PORTS,
) -> int:
    """Simulate a street, serve its grid and IoT APIs on loopback at ``ports`` (grid, IoT; a port taken
    or 0: any free one, which the configuration then names) and run the DAG through Airflow."""
    from islandbridge.devtools.simulator import generate
    from islandbridge.devtools.simulator.servers import GridServer, IotServer

    street = workdir / "street"
    print(f"[demo] simulating a street of {residents} residents (seed {seed}) in {street}")
    generate(street, residents=residents, seed=seed, as_of=as_of)
    creds = demo_credentials(workdir)
    grid_port, iot_port = (_free(p) if p else 0 for p in ports)
    with (
        GridServer(
            street / "grid",
            client_id=GRID_CLIENT_ID,
            client_secret=creds["IB_GRID_CLIENT_SECRET"],
            port=grid_port,
        ) as grid,
        IotServer(street / "iot", api_key=creds["IB_IOT_API_KEY"], port=iot_port) as iot,
    ):
        print(f"[demo] grid platform at {grid.base_url}/api/v2, IoT platform at {iot.base_url}/iot/v1")
        config = workdir / "islandbridge.yml"
        write_config(
            config, street=street, grid_url=grid.base_url, iot_url=iot.base_url, api_secrets_in_files=True
        )
        env = airflow_env(workdir, dags_folder, config, creds, verbose)
        chatter = None if verbose else workdir / "airflow" / "demo.log"
        print("[demo] preparing Airflow metadata (SQLite)" + (f"; its log: {chatter}" if chatter else ""))
        run_airflow(env, "db", "migrate", log=chatter)
        args = dag_test_args(as_of)
        print(f"[demo] running DAG community_sync for the day {as_of} (logical date {args[3]})", flush=True)
        started = dt.datetime.now(dt.UTC)
        run_airflow(env, *args)
        record_run(env, args[3], started)
        settings = load_settings(config, environ={**os.environ, **creds})
    _print_summary(settings, parse_as_of(as_of.isoformat()), config)
    return 0


def _print_summary(settings, as_of: dt.datetime, config: Path) -> None:
    print("\n".join(summary_lines(settings, as_of, config)))


def summary_lines(settings, as_of: dt.datetime, config: Path) -> list[str]:
    """The demo's closing summary: the run and its day, accounting, quality, report sizes and paths."""
    from islandbridge.landing import raw
    from islandbridge.quality.config import QualityConfig
    from islandbridge.warehouse.marts import TO_CHECK, report_rows

    run_id = raw.run_id_for(as_of)
    con = raw.connect(str(settings.warehouse_path), read_only=True, resources=settings.duckdb)
    try:
        status = con.execute("SELECT status FROM meta.runs WHERE run_id = ?", [run_id]).fetchone()
        accounting = raw.run_summary(con, run_id)
        quality = con.execute(
            "SELECT count(*), count(*) FILTER (success), count(*) FILTER (NOT success AND severity = 'warning'),"
            " count(*) FILTER (NOT success AND severity <> 'warning'), count(*) FILTER (source = 'reports')"
            " FROM meta.quality_results WHERE run_id = ?",
            [run_id],
        ).fetchone()
        built = con.execute("SELECT counts FROM meta.mart_builds WHERE run_id = ?", [run_id]).fetchone()
        by_gate = con.execute(
            "SELECT count(*) FROM meta.quality_quarantine WHERE run_id = ?", [run_id]
        ).fetchone()[0]
    finally:
        con.close()
    if not status or status[0] != "loaded":
        raise IslandbridgeError(
            f"the DAG finished but run {run_id} is not recorded as loaded in the warehouse"
        )
    day = local_day(as_of)
    reports_dir = QualityConfig.from_mapping(settings.quality).reports_root(settings.warehouse_path) / run_id
    quarantined = sum(c["quarantined"] or 0 for c in accounting.values())
    total, passed, warned, failed, on_reports = quality
    counts = json.loads(built[0]) if built and built[0] else {}
    snapshot = settings.snapshots_dir / "current.duckdb"
    return [
        "",
        f"[demo] done. Run {run_id}, the day {day} synced (Asia/Shanghai; as of {as_of.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M %z})",
        raw.format_accounting(accounting, indent="  "),
        # the validate step's log line counts the sources' expectations; the reports' are checked at build
        f"  quality:        {total} expectations ({total - on_reports} on the sources at validate, {on_reports} on"
        f" the reports at build): {passed} passed, {warned} warned, {failed} failed; "
        f"{quarantined:,} rows quarantined ({by_gate:,} by the quality gate, the rest by the connectors)",
        "  reports (rows): "
        + (", ".join(f"{name} {n:,}" for name, n in report_rows(counts).items()) or "none built"),
        f"  to check:       {counts.get(TO_CHECK, 0):,} persons of the grid centre's lists whose age or living alone"
        " is unknown (check_reason)",
        f"  run report:     {reports_dir / 'run.html'}",
        f"  quality report: {reports_dir / 'quality.html'}",
        f"  snapshot:       {snapshot}",
        f"  warehouse:      {settings.warehouse_path}",
        f"  exports:        {settings.exports_dir}",
        f"  configuration:  {config}",
        "  Try:",
        f"    .venv/bin/islandbridge shell --config {config}    (analysts: read-only SQL on the snapshot; docs/analysts.md)",
        f'    .venv/bin/islandbridge sql --config {config} "SELECT * FROM meta.run_sources"    '
        "(operators: the whole warehouse, raw tables and identity map included)",
        f"    .venv/bin/islandbridge eval reports --config {config} --truth {config.parent / 'street' / 'truth'}",
        "  Serve the street again and sync another day: docs/operations.md (its credentials are in "
        f"{config.parent / 'secrets'})",
    ]
