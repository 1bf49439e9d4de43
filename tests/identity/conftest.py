"""A 3,000-resident simulated street, synced once per session and reconciled once, for the identity tests.

Tests that change the warehouse work on a copy (`warehouse_copy`), so the session's warehouse stays as
the first reconcile left it.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import AS_OF
from tests.helpers import copy_vault

RESIDENTS = 3000
SEED = 1
PERSON_KEY_TEXT = "pk-test:" + "Q" * 43 + "="  # a fixed 32-byte test key, never a production one
ENVIRON = {
    "IB_GRID_CLIENT_SECRET": "grid-secret",
    "IB_IOT_API_KEY": "iot-key",
    "IB_PERSON_KEY": PERSON_KEY_TEXT,
}


@dataclass(frozen=True)
class Street:
    """The simulated street, its configuration and the pristine synced warehouse (before reconcile)."""

    root: Path
    settings: object
    synced_warehouse: Path

    @property
    def truth(self) -> Path:
        return self.root / "street" / "truth"


@pytest.fixture(scope="session")
def street(tmp_path_factory) -> Street:
    """Generate the street, serve its APIs, sync it through the pipeline, keep a copy of the warehouse."""
    from islandbridge.config import parse_as_of
    from islandbridge.devtools.demo import write_config
    from islandbridge.devtools.simulator import generate
    from islandbridge.devtools.simulator.servers import GridServer, IotServer
    from islandbridge.pipeline import load_settings, sync

    root = tmp_path_factory.mktemp("identity")
    generate(root / "street", residents=RESIDENTS, seed=SEED, as_of=AS_OF)
    config = root / "islandbridge.yml"
    with (
        GridServer(
            root / "street" / "grid", client_id="islandbridge-demo", client_secret="grid-secret"
        ) as grid,
        IotServer(root / "street" / "iot", api_key="iot-key") as iot,
    ):
        write_config(config, street=root / "street", grid_url=grid.base_url, iot_url=iot.base_url)
        settings = load_settings(config, ENVIRON)
        sync(settings, parse_as_of(AS_OF.isoformat()), reconcile_identities=False)
    pristine = root / "synced.duckdb"
    shutil.copyfile(settings.warehouse_path, pristine)
    return Street(root, settings, pristine)


@pytest.fixture(scope="session")
def reconciled(street) -> dict:
    """The first reconcile of the street (it trains and saves model version 1)."""
    from islandbridge.config import parse_as_of
    from islandbridge.identity.reconcile import reconcile

    return reconcile(street.settings, parse_as_of(AS_OF.isoformat()))


@pytest.fixture
def warehouse_copy(street, reconciled, tmp_path):
    """Settings pointing at a private copy of the reconciled warehouse."""
    path = _warehouse_copy(street, street.settings.warehouse_path, tmp_path)
    return dataclasses.replace(street.settings, warehouse_path=path, vault_path=_vault_copy(street, tmp_path))


@pytest.fixture
def synced_copy(street, tmp_path):
    """Settings pointing at a private copy of the synced warehouse, never reconciled."""
    path = _warehouse_copy(street, street.synced_warehouse, tmp_path)
    return dataclasses.replace(street.settings, warehouse_path=path, vault_path=_vault_copy(street, tmp_path))


def _warehouse_copy(street, source: Path, tmp_path) -> Path:
    """``source`` copied as a warehouse is: the database with the raw/ and events/ folders beside it, whose
    Parquet files its tables list relative to it (docs/operations.md, 'Backup, restore and move')."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(source, path)
    for folder in ("raw", "events"):
        if (beside := street.settings.warehouse_path.parent / folder).is_dir():
            shutil.copytree(beside, tmp_path / folder)
    return path


def _vault_copy(street, tmp_path) -> Path:
    """A private copy of the street's vault: the sealed source records the copy's raw tables point at, and
    the linkage model's name frequencies."""
    path = tmp_path / "vault.duckdb"
    copy_vault(street.settings.vault_path, path)
    return path
