"""The kept normalised rows of `identity.reuse`: what invalidates them, a damaged file, where it spills."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from islandbridge.identity import reuse
from islandbridge.identity.reuse import Reuse
from islandbridge.privacy.vault import Vault
from tests.privacy.helpers import vault_ring

AS_OF = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
STREAM = SimpleNamespace(source="registry", spec=SimpleNamespace(stream="t_jm"))


@pytest.fixture
def vault(tmp_path):
    with Vault.open(tmp_path / "vault.duckdb", vault_ring("v1")) as v:
        yield v


def test_an_upgraded_normalising_library_invalidates_the_kept_rows(monkeypatch):
    """A new pypinyin may spell a name differently: rows kept under the old one must not be reused."""
    before, real = reuse.code_version(), reuse.metadata.version
    monkeypatch.setattr(reuse.metadata, "version", lambda name: "99.0" if name == "pypinyin" else real(name))
    assert reuse.code_version() != before


def test_a_kept_file_cut_short_means_normalising_again_not_a_crash(vault, caplog):
    kept = Reuse(vault, AS_OF)
    kept.directory.mkdir(parents=True, exist_ok=True)
    kid = vault.keyring.active.kid.encode()
    kept._path(STREAM).write_bytes(bytes([len(kid)]) + kid + b"\x00" * 5)  # the nonce cut short
    with caplog.at_level(logging.WARNING):
        assert kept._load(STREAM, "context") is None
    assert "normalising them all again" in caplog.text


def test_the_connection_spills_only_into_an_owner_only_folder_beside_the_kept_rows(vault):
    """It compares decrypted kept rows: a spill must not land in the system's temporary folder."""
    kept = Reuse(vault, AS_OF)
    (folder,) = kept._con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(folder).is_relative_to(kept.directory / "spill")
    assert (kept.directory / "spill").stat().st_mode & 0o777 == 0o700
    assert kept.directory.stat().st_mode & 0o777 == 0o700
