"""`islandbridge keys`: add a key, rotate the vault to it without changing person keys, retire the old one."""

from __future__ import annotations

import json
import os

import pytest

from islandbridge.cli import main
from islandbridge.errors import ConfigError
from islandbridge.pipeline import load_settings
from islandbridge.privacy import keyops
from islandbridge.privacy.configured import vault_keyring
from islandbridge.privacy.keys import VAULT, KeyRing, KeyringError, new_keyring_text
from islandbridge.privacy.vault import Vault, VaultIntegrityError

ROWS = [(f"pk_{i:032x}", "phone", "resident_registry", f"t_jm:{i}", f"138{i:08d}") for i in range(7)]


@pytest.fixture
def config(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "vault.keys").write_text(new_keyring_text(kid="v1") + "\n", encoding="ascii")
    path = tmp_path / "islandbridge.yml"
    path.write_text(
        "street: {code: '511403001'}\nlanding: {url: landing}\n"
        "warehouse: {path: warehouse/warehouse.duckdb}\nvault: {path: private/vault.duckdb}\n"
        "keys: {vault: {file: secrets/vault.keys}}\n",
        encoding="utf-8",
    )
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
        return (
            {pk: f["phone"][0].value for pk, f in values.items()},
            vault.open_records("registry", "t_jm", [("t_jm:1", "ib_1")]),
            vault.sealed_list("known_names"),
        )


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
    assert KeyRing.parse(
        (config.parent / "secrets" / "vault.keys").read_text(encoding="ascii"), VAULT
    ).kids == ("v2",)
    assert _contents(_settings(config)) == before
    for entry in key_text.replace(",", " ").split():
        assert entry.split(":", 1)[1] not in out, "key material is never printed"


def test_an_old_key_still_in_use_cannot_be_retired(config):
    keyops.add_key(_settings(config), VAULT, "v2")
    with pytest.raises(KeyringError, match="still sealed under key id 'v1'"):
        keyops.retire_key(_settings(config), VAULT, "v1")
    with pytest.raises(KeyringError, match="active"):
        keyops.retire_key(_settings(config), VAULT, "v2")


@pytest.mark.parametrize(("kid", "shown"), [("+8613800138000", "138****8000"), ("秦光明", "秦*明")])
def test_a_typed_key_id_comes_back_masked(config, kid, shown):
    """`keys add --kid` and `keys retire --kid` repeat a wrong id as `explain` repeats what it was given."""
    with pytest.raises(KeyringError) as retired:
        keyops.retire_key(_settings(config), VAULT, kid)
    with pytest.raises(KeyringError) as added:
        keyops.add_key(_settings(config), VAULT, kid)
    assert f"key id '{shown}' is not in the vault keyring" in str(retired.value)
    assert f"key id '{shown}': a key id must match" in str(added.value)
    assert kid not in str(retired.value) + str(added.value)


def test_retiring_a_key_from_a_file_of_one_key_per_line_keeps_the_others_and_the_active_mark(config):
    """The file is read as the keyring is parsed (`keys.keyring_entries`): new lines separate entries."""
    path = config.parent / "secrets" / "vault.keys"
    v1 = path.read_text(encoding="ascii").strip()
    v2, v3 = (new_keyring_text(kid=kid) for kid in ("v2", "v3"))
    path.write_text(f"{v1}\n*{v2}\n{v3}\n", encoding="ascii")
    assert keyops.retire_key(_settings(config), VAULT, "v3")["configured"] == ["v1", "v2"]
    assert path.read_text(encoding="ascii") == f"{v1},*{v2}\n"


@pytest.mark.parametrize("purpose", ["person_key", "dept:grid_centre"])
def test_no_key_is_added_to_the_person_key_or_a_department_keyring(config, purpose):
    """A second person_key stops every run (exactly one is allowed) and cannot be retired; a new department
    key changes every person_ref of that department: neither is a routine `keys add`."""
    key = config.parent / "secrets" / "other.key"
    key.write_text(new_keyring_text(kid="p1") + "\n", encoding="ascii")
    text = config.read_text(encoding="utf-8").replace(
        "keys: {", f"keys: {{'{purpose}': {{file: secrets/other.key}}, "
    )
    config.write_text(text, encoding="utf-8")
    before = key.read_text(encoding="ascii")
    with pytest.raises(ConfigError, match="never rotated"):
        keyops.add_key(_settings(config), purpose)
    assert key.read_text(encoding="ascii") == before


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


# -- the quarantine key: both quarantines' sealed rows, in the warehouse ------------------------------------------


@pytest.fixture
def quarantined(config):
    """The config with a quarantine keyring (q1) and a warehouse holding rows of both quarantines under it."""
    import datetime as dt

    import pyarrow as pa

    from islandbridge.landing import raw
    from islandbridge.privacy.configured import quarantine_keyring
    from islandbridge.privacy.sealing import seal_quarantine
    from islandbridge.quality import quarantine

    (config.parent / "secrets" / "quarantine.keys").write_text(
        new_keyring_text(kid="q1") + "\n", encoding="ascii"
    )
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "keys: {vault: {file: secrets/vault.keys}}",
            "keys: {vault: {file: secrets/vault.keys}, quarantine: {file: secrets/quarantine.keys}}",
        ),
        encoding="utf-8",
    )
    settings = _settings(config)
    ring = quarantine_keyring(settings)
    settings.warehouse_path.parent.mkdir(parents=True)
    con = raw.connect(str(settings.warehouse_path))
    connector_rows = pa.table(
        {
            "stream": ["events"] * 3,
            "_record_key": ["events:1", "events:1", "events:2"],
            "reason": ["bad ts"] * 3,
            "record_json": ['{"n": 1}', '{"n": 2}', '{"reporter_name": "张小伟"}'],
        }
    )
    con.register("_q", seal_quarantine(ring, "ib_1", "grid", connector_rows))
    con.execute(
        "INSERT INTO meta.quarantine (run_id, source, stream, record_key, reason, seq, kid, nonce, "
        "ciphertext) SELECT 'ib_1', 'grid', stream, _record_key, reason, seq, kid, nonce, ciphertext FROM _q"
    )
    failing = pa.table(
        {
            "_record_key": ["t_jm:7", "t_jm:8"],
            "xm": ["李四", "王五"],
            "expectations_failed": [["id_valid"], ["id_valid"]],
        }
    )
    quarantine.record(
        con,
        "ib_1",
        ["registry"],
        _empty_results(),
        [quarantine.seal(ring, "ib_1", "registry", "t_jm", failing, ["xm"])],
        dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
    )
    con.close()
    return config


def _empty_results():
    import pyarrow as pa

    return pa.table(
        {
            c: pa.array([], t)
            for c, t in (
                ("run_id", pa.string()),
                ("source", pa.string()),
                ("stream", pa.string()),
                ("expectation", pa.string()),
                ("kind", pa.string()),
                ("gx_type", pa.string()),
                ("column_name", pa.string()),
                ("severity", pa.string()),
                ("success", pa.bool_()),
                ("element_count", pa.int64()),
                ("unexpected_count", pa.int64()),
                ("observed_json", pa.string()),
                ("engine", pa.string()),
            )
        }
    )


def _quarantine_contents(settings):
    import json

    import duckdb

    from islandbridge.privacy.configured import quarantine_keyring
    from islandbridge.privacy.sealing import unseal_quarantine
    from islandbridge.quality.quarantine import unseal

    ring = quarantine_keyring(settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        connector = sorted(
            json.dumps(unseal_quarantine(ring, *r), ensure_ascii=False)
            for r in con.execute(
                "SELECT run_id, source, stream, record_key, seq, kid, nonce, ciphertext FROM meta.quarantine"
            ).fetchall()
        )
        cur = con.execute("SELECT * FROM meta.quality_quarantine")
        names = [d[0] for d in cur.description]
        quality = sorted(unseal(ring, dict(zip(names, r, strict=True)))["xm"] for r in cur.fetchall())
    return connector, quality


def test_the_quarantine_key_rotates_through_both_quarantines_and_can_then_be_retired(quarantined, capsys):
    before = _quarantine_contents(_settings(quarantined))
    assert before == (['{"n": 1}', '{"n": 2}', '{"reporter_name": "张小伟"}'], ["李四", "王五"])
    assert main(["keys", "add", "--config", str(quarantined), "--purpose", "quarantine", "--kid", "q2"]) == 0
    with pytest.raises(KeyringError, match="5 quarantine value"):
        keyops.retire_key(_settings(quarantined), "quarantine", "q1")

    assert (
        main(["keys", "rotate", "--config", str(quarantined), "--purpose", "quarantine", "--batch-size", "2"])
        == 0
    )
    assert '"reencrypted": 5' in capsys.readouterr().out
    assert keyops.status(_settings(quarantined), "quarantine")["values_per_kid"] == {"q2": 5}
    assert (
        main(["keys", "retire", "--config", str(quarantined), "--purpose", "quarantine", "--kid", "q1"]) == 0
    )
    assert _quarantine_contents(_settings(quarantined)) == before, "every row opens under the new key alone"
    assert "张小伟" not in capsys.readouterr().out


def test_connector_quarantine_rows_sealed_before_seq_was_stored_get_the_number_they_were_sealed_with(
    quarantined,
):
    """An older warehouse numbered a record key's rows by insertion order; connecting fills seq the same way."""
    import duckdb

    from islandbridge.landing import raw

    settings = _settings(quarantined)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("UPDATE meta.quarantine SET seq = NULL")
    raw.connect(str(settings.warehouse_path)).close()
    assert _quarantine_contents(settings)[0] == ['{"n": 1}', '{"n": 2}', '{"reporter_name": "张小伟"}']


def test_the_vault_and_its_wal_during_a_rotation_by_the_command_are_owner_only(
    config, loose_umask, monkeypatch
):
    main(["keys", "add", "--config", str(config), "--kid", "v2"])
    seen = []
    rotate = Vault.rotate

    def watching(self, *args, **kwargs):
        result = rotate(self, *args, **kwargs)
        wal = self.path.with_name(self.path.name + ".wal")
        seen.append((_mode(self.path), _mode(wal) if wal.exists() else None))
        return result

    monkeypatch.setattr(Vault, "rotate", watching)
    assert main(["keys", "rotate", "--config", str(config), "--batch-size", "2"]) == 0
    assert seen and all(m == (0o600, 0o600) for m in seen), seen
    assert os.umask(0o022) == 0o022, "the command restores the caller's umask"


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def _keep(settings, ring):
    """Files as the identity step keeps them beside the vault (normalised records, linkage scores and a
    model's name frequencies), sealed under the ring's active key; returns each one's plaintext."""
    from islandbridge.identity import reuse, scoring
    from islandbridge.privacy.sealed_files import write_sealed

    folder = settings.vault_path.parent
    aads = {
        folder / "normalised" / "registry__t_jm.sealed": [reuse._LABEL, reuse.FORMAT, "registry", "t_jm"],
        folder / "linkage" / "scores.sealed": [scoring._LABEL, scoring.FORMAT, "scores"],
        folder / "linkage" / "frequencies-abc.sealed": [scoring._LABEL, scoring.FORMAT, "frequencies"],
    }
    plain = {}
    for path, aad in aads.items():
        plain[path] = f"张小伟 13800138000 {path.name}".encode()
        write_sealed(ring, path, json.dumps(aad).encode("utf-8"), plain[path])
    return plain


def test_rotation_reseals_the_files_the_identity_step_keeps_and_only_then_the_old_key_retires(config, capsys):
    """Normalised records and linkage files beside the vault hold names and phones under the vault key:
    `keys rotate` re-seals them, and the old key cannot be retired while one is still under it."""
    from islandbridge.identity import reuse, scoring
    from islandbridge.privacy.sealed_files import read_sealed, sealed_kid

    settings = _settings(config)
    plain = _keep(settings, vault_keyring(settings))
    assert keyops.status(settings)["kept_files_per_kid"] == {"v1": 3}
    keyops.add_key(settings, VAULT, "v2")
    keyops.rotate(_settings(config))  # the library alone, without the identity step's files
    with pytest.raises(KeyringError, match="3 file"):
        keyops.retire_key(_settings(config), VAULT, "v1")

    assert main(["keys", "rotate", "--config", str(config)]) == 0
    assert '"kept_files_resealed": 3' in capsys.readouterr().out
    settings = _settings(config)
    assert keyops.status(settings)["kept_files_per_kid"] == {"v2": 3}
    assert main(["keys", "retire", "--config", str(config), "--kid", "v1"]) == 0
    ring = vault_keyring(_settings(config))
    kept = [*reuse.kept_files(settings.vault_path), *scoring.kept_files(settings.vault_path)]
    assert {path: read_sealed(ring, path, aad) for path, aad in kept} == plain
    assert {sealed_kid(path) for path in plain} == {"v2"}


def test_a_source_named_with_a_double_underscore_is_resealed_and_a_stray_file_shows_no_content(config):
    from islandbridge.identity import reuse
    from islandbridge.privacy.sealed_files import read_sealed, write_sealed

    settings = _settings(config)
    folder = settings.vault_path.parent / "normalised"
    aad = json.dumps([reuse._LABEL, reuse.FORMAT, "grid__north", "events"]).encode("utf-8")
    write_sealed(vault_keyring(settings), folder / "grid__north__events.sealed", aad, "张小伟".encode())
    (folder / "notes.sealed").write_bytes(b"\x09" + "张小伟".encode() + b" 13800138000")  # not sealed here
    assert keyops.status(settings)["kept_files_per_kid"] == {"v1": 1, "?": 1}
    keyops.add_key(settings, VAULT, "v2")
    result = keyops.rotate(_settings(config), kept_files=reuse.kept_files(settings.vault_path))
    assert result["kept_files_resealed"] == 1 and result["kept_files_left_per_kid"] == {"?": 1}
    ring = vault_keyring(_settings(config))
    assert read_sealed(ring, folder / "grid__north__events.sealed", aad) == "张小伟".encode()
    assert "张" not in json.dumps(keyops.status(_settings(config)), ensure_ascii=False)


def test_a_kept_file_that_cannot_be_resealed_keeps_its_key_from_retiring(config):
    settings = _settings(config)
    _keep(settings, vault_keyring(settings))
    stray = settings.vault_path.parent / "linkage" / "clusters.sealed"  # not one the rotation knows
    scores = settings.vault_path.parent / "linkage" / "scores.sealed"
    stray.write_bytes(scores.read_bytes())
    scores.write_bytes(scores.read_bytes()[:-1] + bytes([scores.read_bytes()[-1] ^ 1]))  # damaged
    keyops.add_key(settings, VAULT, "v2")
    from islandbridge.identity import reuse, scoring

    kept = [*reuse.kept_files(settings.vault_path), *scoring.kept_files(settings.vault_path)]
    result = keyops.rotate(_settings(config), kept_files=kept)
    assert result["kept_files_resealed"] == 2 and result["kept_files_left_per_kid"] == {"v1": 2}
    assert result["kept_files_unreadable"] == ["scores.sealed (InvalidTag)"]
    assert "v1" not in result["retirable"]
    with pytest.raises(KeyringError, match="2 file"):
        keyops.retire_key(_settings(config), VAULT, "v1")
