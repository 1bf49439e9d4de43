"""Workspaces over the simulated street for the quality tests: extract, gate, load, and edit the landing.

``Workspace.sync`` runs the steps the way the pipeline wires them: extract every source, validate the
landed data with the gate, and load only if the gate passed. Defects are injected by editing the landed
Parquet (``edit``) or the simulated registry before extraction.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import yaml

from islandbridge import pipeline
from islandbridge.config import parse_as_of
from islandbridge.devtools.demo import write_config
from islandbridge.landing import raw
from islandbridge.landing.zone import MANIFEST, open_root
from islandbridge.pipeline import load_settings
from islandbridge.privacy.keys import new_keyring_text
from islandbridge.quality import validate_run

GRID_CLIENT = ("islandbridge-demo", "quality-grid-secret")
IOT_KEY = "quality-iot-key"
LOADED_AT = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def served_street(street_dir):
    """The session's simulated street with its grid and IoT servers, shared by tests that only read it."""
    from islandbridge.devtools.simulator.servers import GridServer, IotServer

    with (
        GridServer(street_dir / "grid", client_id=GRID_CLIENT[0], client_secret=GRID_CLIENT[1]) as grid,
        IotServer(street_dir / "iot", api_key=IOT_KEY) as iot,
    ):
        yield street_dir, grid.base_url, iot.base_url


@pytest.fixture(scope="session")
def quarantine_keys() -> str:
    return new_keyring_text(kid="qtest")


class Workspace:
    """One configuration, landing zone and warehouse over a street."""

    def __init__(self, root: Path, street: Path, grid_url: str, iot_url: str, keys: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.street, self.config = root, street, root / "islandbridge.yml"
        write_config(self.config, street=street, grid_url=grid_url, iot_url=iot_url)
        body = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        body["keys"]["quarantine"] = {"env": "IB_QUARANTINE_KEYS"}  # the rest: the demo's key files
        self.config.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
        self.environ = {
            "IB_GRID_CLIENT_SECRET": GRID_CLIENT[1],
            "IB_IOT_API_KEY": IOT_KEY,
            "IB_QUARANTINE_KEYS": keys,
        }
        self.settings = load_settings(self.config, self.environ)

    def copy(self, root: Path) -> Workspace:
        """Another workspace holding a copy of this one's configuration, landing zone and warehouse."""
        shutil.copytree(self.root, root, ignore=shutil.ignore_patterns("reports"))
        clone = object.__new__(Workspace)
        clone.__dict__.update(self.__dict__)
        clone.root, clone.config = root, root / "islandbridge.yml"
        clone.settings = load_settings(clone.config, self.environ)
        return clone

    def extract(self, day: str, sources: Sequence[str] | None = None) -> str:
        for source in sources or list(self.settings.sources):
            pipeline.extract(self.settings, source, parse_as_of(day))
        return raw.run_id_for(parse_as_of(day))

    def gate(self, day: str, sources: Sequence[str] | None = None, quality: Mapping | None = None, **kw):
        as_of = parse_as_of(day)
        return validate_run(
            self.settings, raw.run_id_for(as_of), as_of, sources or list(self.settings.sources), quality, **kw
        )

    def load(self, day: str, sources: Sequence[str] | None = None) -> dict:
        return pipeline.load(
            self.settings, parse_as_of(day), sources or list(self.settings.sources), clock=lambda: LOADED_AT
        )

    def sync(self, day: str, sources: Sequence[str] | None = None, quality: Mapping | None = None):
        """The lead's wiring: extract, gate, and load only when the gate passed (it raises otherwise)."""
        self.extract(day, sources)
        gate = self.gate(day, sources, quality)
        self.load(day, sources)
        return gate

    # -- the landing zone -------------------------------------------------------------------------------

    def base(self, day: str, source: str) -> str:
        _, root = open_root(self.settings.landing_url)
        return posixpath.join(root, raw.run_id_for(parse_as_of(day)), source)

    def landed(self, day: str, source: str, stream: str) -> pa.Table:
        return pads.dataset(posixpath.join(self.base(day, source), stream), format="parquet").to_table()

    def manifest(self, day: str, source: str) -> dict:
        return json.loads(Path(self.base(day, source), MANIFEST).read_text(encoding="utf-8"))

    def edit(self, day: str, source: str, stream: str, change: Callable[[list[dict]], list[dict]]) -> None:
        """Rewrite a landed stream through ``change`` (rows as dicts), keeping the manifest's accounting
        balanced as if the connector had landed the edited rows (read and landed follow the row count)."""
        table = self.landed(day, source, stream)
        rows = change(table.to_pylist())
        folder = Path(self.base(day, source), stream)
        shutil.rmtree(folder)
        folder.mkdir()
        names = list(rows[0]) if rows else table.schema.names
        pq.write_table(
            pa.Table.from_pylist(rows, pa.schema([(n, pa.string()) for n in names])),
            folder / "part-00000.parquet",
        )
        manifest = self.manifest(day, source)
        info = manifest["streams"][stream]
        delta = len(rows) - table.num_rows
        info["read"] += delta
        info["landed"] += delta
        info["parts"] = 1
        Path(self.base(day, source), MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False), encoding="utf-8"
        )

    # -- the warehouse ----------------------------------------------------------------------------------

    def warehouse(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.settings.warehouse_path), read_only=True)

    def query(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        with self.warehouse() as con:
            return con.execute(sql, params or []).fetchall()


def set_values(changes: Mapping[str, Mapping[str, str | None]]) -> Callable[[list[dict]], list[dict]]:
    """An ``edit``: set columns of the rows with these record keys."""

    def change(rows: list[dict]) -> list[dict]:
        for row in rows:
            row.update(changes.get(row["_record_key"], {}))
        return rows

    return change


@pytest.fixture(scope="session")
def clean(tmp_path_factory, served_street, quarantine_keys):
    """The simulated street synced once, through the gate: (workspace, gate result)."""
    street, grid_url, iot_url = served_street
    ws = Workspace(tmp_path_factory.mktemp("clean"), street, grid_url, iot_url, quarantine_keys)
    return ws, ws.sync("2026-11-20")


@pytest.fixture
def workspace_factory(tmp_path, served_street, quarantine_keys):
    """Workspaces over the shared street, or over a private copy (``private=True``) a test may edit."""
    street, grid_url, iot_url = served_street

    def make(name: str = "ws", private: bool = False) -> Workspace:
        target = street
        if private:
            target = tmp_path / f"{name}-street"
            shutil.copytree(street, target, ignore=shutil.ignore_patterns("events.jsonl"))
        return Workspace(tmp_path / name, target, grid_url, iot_url, quarantine_keys)

    return make
