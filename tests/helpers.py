"""Helpers shared by the end-to-end tests: what a warehouse holds, in a comparable form, and a living
street served with a configuration for it."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import duckdb
import yaml

from islandbridge.landing.folder_owner import is_marker

RAW_TABLES = {
    "registry": ["t_xq", "t_fw", "t_jm", "t_jm_bq"],
    "grid": ["grids", "workers", "residents", "events", "visits"],
    "civil": ["dibao", "senior"],
    "iot": ["devices", "cardholders", "events"],
}
_HOLD = (
    "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
    "print('ready', flush=True); sys.stdin.read()"
)


def hold(path: Path, *, read_only: bool = False) -> subprocess.Popen:
    """Another process holding the DuckDB file at ``path`` open (for writing, or ``read_only`` as an
    operator's ``islandbridge sql`` does) until its stdin is closed (``.communicate("")``)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path), "ro" if read_only else "rw"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    return holder


@contextmanager
def held(path: Path, *, read_only: bool = False):
    """The DuckDB file at ``path`` held open by another process (`hold`) for the block, as a running sync
    holds the warehouse for writing; yields that process's id."""
    holder = hold(path, read_only=read_only)
    try:
        yield holder.pid
    finally:
        holder.communicate("")


def copy_vault(source: Path, target: Path) -> None:
    """Copy the vault file ``source`` to ``target``, with the linkage model's name frequencies kept beside
    it (`identity.scoring`: they belong to the model, as the model belongs to the warehouse)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    (target.parent / "linkage").mkdir(exist_ok=True)
    for kept in (source.parent / "linkage").glob("frequencies-*.sealed"):
        shutil.copyfile(kept, target.parent / "linkage" / kept.name)


def warehouse(config):
    """A read-only connection to the warehouse a test configuration points at."""
    return duckdb.connect(str(config.parent / "warehouse" / "warehouse.duckdb"), read_only=True)


def snapshot(config) -> dict:
    """Every raw table, the run accounting, the source state and the quarantine — without wall-clock times."""
    with warehouse(config) as con:
        tables = {f"raw.{s}__{t}" for s, ts in RAW_TABLES.items() for t in ts}
        snap = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
        snap["run_sources"] = con.execute(
            "SELECT run_id, source, stream, read, landed, quarantined, duplicates, deleted "
            "FROM meta.run_sources ORDER BY ALL"
        ).fetchall()
        snap["state"] = con.execute("SELECT * FROM meta.source_state ORDER BY ALL").fetchall()
        snap["quarantine"] = _unsealed_quarantine(con, config)
        snap["runs"] = con.execute("SELECT run_id, as_of, status FROM meta.runs ORDER BY ALL").fetchall()
        built = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('core', 'marts') AND table_type = 'BASE TABLE'"
        ).fetchall()
        for (table,) in built:
            snap[table] = sorted(
                (tuple(_rounded(v) for v in row) for row in con.execute(f"SELECT * FROM {table}").fetchall()),
                key=repr,
            )
    snap["exports"] = exports(config.parent / "exports")
    return snap


def event_rows_by_day(warehouse_path: Path, root: Path) -> dict[dt.date, list[tuple]]:
    """The rows of each day's device-event files (every column, sorted: how they are split among a day's
    files and ordered in them is not compared), once it is checked that the files on disk under ``root``
    are exactly the files ``core.device_event_files`` lists."""
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        listed = con.execute("SELECT day, file FROM core.device_event_files ORDER BY day, file").fetchall()
        on_disk = sorted(  # the folder's owner marker (`landing.folder_owner`) is no event file
            p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not is_marker(p)
        )
        assert sorted(f for _, f in listed) == on_disk, (listed, on_disk)
        rows = {}
        for day in sorted({d for d, _ in listed}):
            paths = ", ".join("'" + str(root / f).replace("'", "''") + "'" for d, f in listed if d == day)
            rows[day] = con.execute(f"SELECT * FROM read_parquet([{paths}]) ORDER BY ALL").fetchall()
        return rows


def exports(root) -> dict:
    """Every export file's bytes (SHA-256), and each manifest without the time it was made and the audit
    log's position then (every export appends, so a re-run's is further on)."""
    import hashlib
    import json

    out = {}
    for path in sorted(root.rglob("*")) if root.exists() else ():
        if path.is_file() and path.name == "manifest.json":
            manifest = json.loads(path.read_text(encoding="utf-8"))
            manifest.pop("made_at", None)
            manifest.pop("audit", None)
            out[str(path.relative_to(root))] = manifest
        elif path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _unsealed_quarantine(con, config) -> list:
    """Connector quarantine rows with their sealed record opened: a re-seal draws a new nonce, so the
    ciphertext differs between two loads of the same rows while the content must not."""
    from islandbridge.pipeline import load_settings
    from islandbridge.privacy.configured import quarantine_keyring
    from islandbridge.privacy.sealing import unseal_quarantine

    ring = quarantine_keyring(load_settings(config, {}, with_sources=False))
    rows = con.execute(
        "SELECT run_id, source, stream, record_key, reason, kid, nonce, ciphertext, seq FROM meta.quarantine"
    ).fetchall()
    return sorted(
        (r[:5] + (unseal_quarantine(ring, *r[:4], r[8], r[5], r[6], r[7]),) for r in rows), key=repr
    )


def _rounded(value):
    """Match probabilities to 6 places: a warehouse rebuilt from scratch retrains the linkage model, whose
    DuckDB aggregations may add floats in another order (last-bit differences, same decisions)."""
    return round(value, 6) if isinstance(value, float) else value


@contextmanager
def living_street(
    tmp_path, monkeypatch, *, days: int, seed: int, first: dt.date, residents: int = 300, quirks=None
):
    """A simulated street living ``days`` days from ``first`` (with ``quirks``, a `Quirks` profile), served
    at ``first`` (``LivingStreet``),
    with a configuration for it at ``tmp_path/run/islandbridge.yml`` and the sources' secrets in the
    environment. Yields ``(served, config)``; move days with ``served.set_day``."""
    from islandbridge.devtools.demo import write_config
    from islandbridge.devtools.simulator import simulate
    from islandbridge.devtools.simulator.servers_days import LivingStreet
    from tests.conftest import GRID_CLIENT, IOT_KEY

    street = tmp_path / "street"
    simulate(street, residents=residents, seed=seed, days=days, as_of=first, quirks=quirks)
    monkeypatch.setenv("IB_GRID_CLIENT_SECRET", GRID_CLIENT[1])
    monkeypatch.setenv("IB_IOT_API_KEY", IOT_KEY)
    config = tmp_path / "run" / "islandbridge.yml"
    config.parent.mkdir()
    with LivingStreet(
        street, day=first, client_id=GRID_CLIENT[0], client_secret=GRID_CLIENT[1], api_key=IOT_KEY
    ) as served:
        write_config(config, street=served.live, grid_url=served.grid.base_url, iot_url=served.iot.base_url)
        text = config.read_text(encoding="utf-8").replace("islandbridge-demo", GRID_CLIENT[0])
        config.write_text(text, encoding="utf-8")
        yield served, config


def days_then_one_unchanged(first: dt.date, changing: int) -> list[tuple[dt.date, dt.date]]:
    """(as-of day, street day) of ``changing`` days of a living street, then one more held at the last."""
    days = [(first + dt.timedelta(days=i), first + dt.timedelta(days=i)) for i in range(changing)]
    return [*days, (first + dt.timedelta(days=changing), days[-1][1])]


def each_day_synced(tmp_path, monkeypatch, *, changing: int, seed: int, first: dt.date, **sync_options):
    """Sync a living street of ``changing`` days and then one day held at the last (no source change,
    no device events), day after day; yields ``(settings, as-of day, the run's summary)`` after each
    day's run, before the next day is served. ``sync_options`` go to `pipeline.sync`."""
    import os

    from islandbridge.config import parse_as_of
    from islandbridge.pipeline import load_settings, sync

    with living_street(tmp_path, monkeypatch, days=changing, seed=seed, first=first) as (served, config):
        allow_a_day_without_events(config)
        settings = load_settings(config, os.environ)
        for as_of_day, street_day in days_then_one_unchanged(first, changing):
            served.set_day(street_day)
            yield settings, as_of_day, sync(settings, parse_as_of(as_of_day.isoformat()), **sync_options)


def allow_a_day_without_events(config) -> None:
    """A day without change delivers no device events: the volume check warns instead of stopping the run."""
    text = yaml.safe_load(config.read_text(encoding="utf-8"))
    text["quality"] = {"checks": {"iot.events.volume": {"severity": "warning"}}}
    config.write_text(yaml.safe_dump(text, allow_unicode=True), encoding="utf-8")


def damaged_duckdb(path: Path) -> Path:
    """A DuckDB file at ``path`` whose data blocks fail their checksum: DuckDB raises its plain ``Error``
    ("Corrupt database file"), not the ``IOException`` of a file that is no database at all."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(100000)")
    with path.open("r+b") as f:
        for offset in range(12288, 12288 + 2 * 262144, 4096):
            f.seek(offset + 16)
            f.write(b"\xff" * 64)
    return path
