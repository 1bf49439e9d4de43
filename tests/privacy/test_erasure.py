"""Retention's erasure of sealed record versions: the rows go, and so do their bytes in the vault file."""

from __future__ import annotations

import pyarrow as pa

from islandbridge.privacy.erasure import erase_versions, sealed_versions
from islandbridge.privacy.vault import Vault


def _sealed(tmp_path, ring) -> tuple:
    path = tmp_path / "vault.duckdb"
    with Vault.open(path, ring) as vault:
        vault.seal_records("registry", "t_jm", "ib_1", [("t_jm:1", {"lxdh": "13800000001"})])
        vault.seal_records("registry", "t_jm", "ib_2", [("t_jm:1", {"lxdh": "13900000002"})])
        ciphertexts = vault._con.execute("SELECT run_id, ciphertext FROM records ORDER BY run_id").fetchall()
    return path, dict(ciphertexts)


def test_an_erased_version_leaves_the_vault_and_the_file_keeps_the_other(tmp_path, ring):
    path, ciphertexts = _sealed(tmp_path, ring)
    versions = sealed_versions(path)
    assert versions.num_rows == 2
    old = versions.filter(pa.compute.equal(versions["run_id"], "ib_1"))
    assert erase_versions(path, old) == 1
    assert sealed_versions(path)["run_id"].to_pylist() == ["ib_2"]
    data = path.read_bytes()
    assert ciphertexts["ib_1"] not in data  # rewritten: not lingering in a freed block
    with Vault.open(path, ring) as vault:
        assert vault.open_records("registry", "t_jm", [("t_jm:1", "ib_2")]) == [{"lxdh": "13900000002"}]


def test_erasing_nothing_leaves_the_file_as_it_was(tmp_path, ring):
    path, _ = _sealed(tmp_path, ring)
    before = path.stat().st_mtime_ns
    assert erase_versions(path, sealed_versions(path).slice(0, 0)) == 0
    assert path.stat().st_mtime_ns == before
