"""``islandbridge demo``: the whole road on one machine, through Airflow.

Generates a simulated street, serves its grid and IoT platforms on loopback, writes a configuration that
names them (credentials by reference to environment variables, generated fresh for each demo), and runs
the ``community_sync`` DAG with ``airflow dags test`` against a project-local ``AIRFLOW_HOME`` with SQLite
metadata. Then prints where the warehouse is, what landed per source, and a query to paste.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
from pathlib import Path

import yaml

from islandbridge.config import parse_as_of
from islandbridge.errors import IslandbridgeError
from islandbridge.pipeline import load_settings

GRID_CLIENT_ID = "islandbridge-demo"
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
    path: Path, *, street: Path, grid_url: str, iot_url: str, street_code: str = "511403001"
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
                "client_secret": {"env": "IB_GRID_CLIENT_SECRET"},
            },
            "civil": {"kind": "civil_files", "path": str(street / "civil")},
            "iot": {"kind": "iot_rest", "base_url": iot_url, "api_key": {"env": "IB_IOT_API_KEY"}},
        },
    }
    header = (
        "# islandbridge configuration for a simulated street, written by `islandbridge demo`.\n"
        "# See docs/configuration.md for every key.\n"
    )
    path.write_text(header + yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _ensure_keyring(path: Path) -> None:
    from islandbridge.privacy.keys import new_keyring_text

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(new_keyring_text() + "\n")


def airflow_env(workdir: Path, dags_folder: Path, config: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a project-local Airflow: its own home, SQLite metadata, only our DAGs."""
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = home / "airflow.db"  # holds connections and XComs: owner-only before Airflow opens it
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    for path, mode in ((home, 0o700), (database, 0o600)):
        os.chmod(path, mode)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "ISLANDBRIDGE_CONFIG": str(config),
            **extra,
        }
    )
    return env


def run_airflow(env: dict[str, str], *args: str) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), *args], env=env, check=False)
    if result.returncode != 0:
        raise IslandbridgeError(
            f"`airflow {' '.join(args)}` failed with exit status {result.returncode}; "
            f"task logs are under {env['AIRFLOW__LOGGING__BASE_LOG_FOLDER']}"
        )


def run_demo(*, workdir: Path, residents: int, seed: int, as_of: dt.date, dags_folder: Path) -> int:
    from islandbridge.devtools.simulator import generate
    from islandbridge.devtools.simulator.servers import GridServer, IotServer

    street = workdir / "street"
    print(f"[demo] simulating a street of {residents} residents (seed {seed}) in {street}")
    generate(street, residents=residents, seed=seed, as_of=as_of)
    creds = {"IB_GRID_CLIENT_SECRET": secrets.token_urlsafe(24), "IB_IOT_API_KEY": secrets.token_urlsafe(24)}
    with (
        GridServer(
            street / "grid", client_id=GRID_CLIENT_ID, client_secret=creds["IB_GRID_CLIENT_SECRET"]
        ) as grid,
        IotServer(street / "iot", api_key=creds["IB_IOT_API_KEY"]) as iot,
    ):
        print(f"[demo] grid platform at {grid.base_url}/api/v2, IoT platform at {iot.base_url}/iot/v1")
        config = workdir / "islandbridge.yml"
        write_config(config, street=street, grid_url=grid.base_url, iot_url=iot.base_url)
        env = airflow_env(workdir, dags_folder, config, creds)
        print("[demo] preparing Airflow metadata (SQLite)")
        run_airflow(env, "db", "migrate")
        # Airflow 3 gives a manual run the data interval that *ends* at the date it is handed, so the
        # end of the day is passed: the run then covers that day and its as-of is the day's end.
        interval_end = parse_as_of(as_of.isoformat())
        print(
            f"[demo] running DAG community_sync for the day {as_of} (interval ending {interval_end.isoformat()})"
        )
        run_airflow(env, "dags", "test", "community_sync", interval_end.isoformat())
        settings = load_settings(config, environ={**os.environ, **creds})
    _print_summary(settings, parse_as_of(as_of.isoformat()), config)
    return 0


def _print_summary(settings, as_of: dt.datetime, config: Path) -> None:
    from islandbridge.landing import raw

    con = raw.connect(str(settings.warehouse_path), read_only=True)
    try:
        run_id = raw.run_id_for(as_of)
        status = con.execute("SELECT status FROM meta.runs WHERE run_id = ?", [run_id]).fetchone()
        summary = raw.run_summary(con, run_id)
    finally:
        con.close()
    if not status or status[0] != "loaded":
        raise IslandbridgeError(
            f"the DAG finished but run {run_id} is not recorded as loaded in the warehouse"
        )
    print("\n[demo] done.")
    print(f"  configuration: {config}")
    print(f"  warehouse:     {settings.warehouse_path}")
    print(f"  snapshot:      {settings.snapshots_dir / 'current.duckdb'}   (analysts: open read-only)")
    print(f"  run report:    {settings.warehouse_path.parent / 'reports' / run_id / 'run.html'}")
    print(f"  exports:       {settings.exports_dir}")
    print(f"  run:           {run_id} (as of {as_of.isoformat()})")
    print(raw.format_accounting(summary, indent="  "))
    print("\n  Try:")
    print(f'    .venv/bin/islandbridge sql --config {config} "SELECT * FROM marts.island_coverage"')
    print(
        f"    .venv/bin/islandbridge eval reports --config {config} --truth {config.parent / 'street' / 'truth'}"
    )
    print(f"    duckdb -readonly {settings.snapshots_dir / 'current.duckdb'}   (or see docs/analysts.md)")
