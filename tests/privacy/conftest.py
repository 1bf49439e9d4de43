"""A vault with a fresh keyring for each test."""

from __future__ import annotations

import os

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


@pytest.fixture
def loose_umask():
    """The umask most shells have (0o022): what the code must not rely on."""
    old = os.umask(0o022)
    yield
    os.umask(old)
