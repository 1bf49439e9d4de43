"""`islandbridge keys`: add a key, rotate the vault to it without changing person keys, retire the old one."""

from __future__ import annotations

import pytest

from islandbridge.cli import main
from islandbridge.config import load_settings
from islandbridge.pipeline import vault_keyring
from islandbridge.warehouse import keyops
from islandbridge.warehouse.keys import VAULT, KeyRing, KeyringError, new_keyring_text
from islandbridge.warehouse.vault import Vault, VaultIntegrityError

ROWS = [(f"pk_{i:032x}", "phone", "resident_registry", f"t_jm:{i}", f"138{i:08d}") for i in range(7)]


@pytest.fixture
def config(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "vault.keys").write_text(new_keyring_text(kid="v1") + "\n", encoding="ascii")
    path = tmp_path / "islandbridge.yml"
    path.write_text("street: {code: '511403001'}\nlanding: {url: landing}\n"
                    "warehouse: {path: warehouse/warehouse.duckdb}\nvault: {path: private/vault.duckdb}\n"
                    "keys: {vault: {file: secrets/vault.keys}}\n", encoding="utf-8")
    settings = _settings(path)
    with Vault.open(settings.vault_path, vault_keyring(settings)) as vault:
        vault.put_many(ROWS)
        vault.seal_records("registry", "t_jm", "ib_1", [("t_jm:1", {"xm": "张小伟"})])
        vault.put_sealed_list("known_names", ["张小伟"])
    return path


def _settings(path):
    return load_settings(path, {}, with_sources=False)


def _contents(settings):
    with Vault.open(settings.vault_path, vault_keyring(settings)) as vault:
        values = vault.get([r[0] for r in ROWS], ["phone"])
        return ({pk: f["phone"][0].value for pk, f in values.items()},
                vault.open_records("registry", "t_jm", [("t_jm:1", "ib_1")]), vault.sealed_list("known_names"))


def test_rotation_reencrypts_every_value_and_keeps_person_keys_and_values(config, capsys):
    before = _contents(_settings(config))
    assert main(["keys", "add", "--config", str(config), "--kid", "v2"]) == 0
    assert "v2" in capsys.readouterr().out
    key_text = (config.parent / "secrets" / "vault.keys").read_text(encoding="ascii")
    assert (config.parent / "secrets" / "vault.keys").stat().st_mode & 0o077 == 0

    settings = _settings(config)
    assert keyops.status(settings)["values_per_kid"] == {"v1": 9}
    result = keyops.rotate(settings, batch_size=2, batches_per_hold=1)
    assert result["reencrypted"] == 9 and result["holds"] > 1, "released the vault between rounds"
    assert keyops.status(settings)["values_per_kid"] == {"v2": 9}
    assert _contents(settings) == before

    assert main(["keys", "retire", "--config", str(config), "--kid", "v1"]) == 0
    out = capsys.readouterr().out
    assert KeyRing.parse((config.parent / "secrets" / "vault.keys").read_text(encoding="ascii"), VAULT).kids == ("v2",)
    assert _contents(_settings(config)) == before
    for entry in key_text.replace(",", " ").split():
        assert entry.split(":", 1)[1] not in out, "key material is never printed"


def test_an_old_key_still_in_use_cannot_be_retired(config):
    keyops.add_key(_settings(config), VAULT, "v2")
    with pytest.raises(KeyringError, match="still sealed under key id 'v1'"):
        keyops.retire_key(_settings(config), VAULT, "v1")
    with pytest.raises(KeyringError, match="active"):
        keyops.retire_key(_settings(config), VAULT, "v2")


def test_a_wrong_key_for_a_kid_fails_naming_the_kid_never_with_garbage(config):
    settings = _settings(config)
    wrong = KeyRing.parse(new_keyring_text(kid="v1"), VAULT)  # same id, other material
    with Vault.open(settings.vault_path, wrong) as vault, pytest.raises(VaultIntegrityError, match="'v1'"):
        vault.get([ROWS[0][0]], ["phone"])
    with Vault.open(settings.vault_path, wrong) as vault, pytest.raises(VaultIntegrityError, match="'v1'"):
        vault.open_records("registry", "t_jm", [("t_jm:1", "ib_1")])


def test_a_missing_kid_fails_naming_it(config):
    settings = _settings(config)
    other = KeyRing.parse(new_keyring_text(kid="v9"), VAULT)
    with Vault.open(settings.vault_path, other) as vault, pytest.raises(KeyringError, match="v1"):
        vault.sealed_list("known_names")
