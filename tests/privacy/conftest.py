"""A vault with a fresh keyring for each test."""

from __future__ import annotations

import pytest

from islandbridge.privacy.keys import KeyRing
from islandbridge.privacy.vault import Vault
from tests.privacy.helpers import vault_ring


@pytest.fixture
def ring() -> KeyRing:
    return vault_ring("v1")


@pytest.fixture
def vault(tmp_path, ring):
    with Vault.open(tmp_path / "vault.duckdb", ring) as v:
        yield v
