"""The identifier vault: authenticated encryption bound to its row, rotation without downtime."""

from __future__ import annotations

import logging

import pytest

from islandbridge.privacy.keys import VAULT, KeyRing, UnknownKeyIdError, new_keyring_text
from islandbridge.privacy.vault import FIELDS, Vault, VaultError, VaultIntegrityError
from tests.helpers import damaged_duckdb
from tests.privacy.helpers import vault_ring

PEOPLE = {
    "pk_aaa": {
        "name": "张小伟",
        "id_number": "510104196812225052",
        "phone": "13800138000",
        "bank_card": "6222021234567890123",
        "address": "锦江区春熙路街道红星路三段1号",
    },
    "pk_bbb": {
        "name": "李秀英",
        "id_number": "51010419450101002X",
        "phone": "13912345678",
        "bank_card": "6217001234567890",
        "address": "青羊区少城路7号2单元501",
    },
}


def rows(people=PEOPLE, system="registry"):
    return [(pk, f, system, f"jm:{pk}", v) for pk, fields in people.items() for f, v in fields.items()]


def values(vault, pks=tuple(PEOPLE)):
    got = vault.get(pks, FIELDS)
    return {pk: {f: [v.value for v in vs] for f, vs in fields.items()} for pk, fields in got.items()}


def expected():
    return {pk: {f: [v] for f, v in fields.items()} for pk, fields in PEOPLE.items()}


def swap(vault, where_a, where_b):
    """Exchange the sealed value of two rows, as someone with write access to the file could."""
    con = vault._con
    a = con.execute(
        "SELECT nonce, ciphertext FROM identifiers WHERE person_key=? AND field=?", where_a
    ).fetchone()
    b = con.execute(
        "SELECT nonce, ciphertext FROM identifiers WHERE person_key=? AND field=?", where_b
    ).fetchone()
    for (nonce, ct), where in ((b, where_a), (a, where_b)):
        con.execute(
            "UPDATE identifiers SET nonce=?, ciphertext=? WHERE person_key=? AND field=?", [nonce, ct, *where]
        )


def test_values_round_trip(vault):
    assert vault.put_many(rows()).inserted == 10
    assert values(vault) == expected()


def test_chunks_give_what_one_put_gives_a_key_repeated_in_one_call_filed_once_with_its_last_value(vault):
    """Chunking does not change the outcome: a key given twice in one call is filed once, last value wins."""
    twice = [*rows(), ("pk_aaa", "phone", "registry", "jm:pk_aaa", "13700000000"), *rows()]
    result = vault.put_many(twice, chunk_rows=3)
    assert (result.inserted, result.replaced, result.unchanged) == (10, 0, 0)
    assert values(vault) == expected()


def test_get_returns_the_kid_and_source_of_each_value(vault):
    vault.put_many(rows())
    [value] = vault.get(["pk_aaa"], ["phone"])["pk_aaa"]["phone"]
    assert (value.system, value.record_key, value.kid) == ("registry", "jm:pk_aaa", "v1")


def test_same_plaintext_again_changes_nothing(vault):
    vault.put_many(rows())
    before = vault._con.execute("SELECT * FROM identifiers ORDER BY ALL").fetchall()
    result = vault.put_many(rows())
    assert (result.inserted, result.replaced, result.unchanged) == (0, 0, 10)
    assert vault._con.execute("SELECT * FROM identifiers ORDER BY ALL").fetchall() == before


def test_new_plaintext_replaces_the_stored_one(vault):
    vault.put_many(rows())
    result = vault.put_many([("pk_aaa", "phone", "registry", "jm:pk_aaa", "13700000000")])
    assert result.replaced == 1
    assert values(vault, ["pk_aaa"])["pk_aaa"]["phone"] == ["13700000000"]


def test_values_from_two_systems_are_kept_apart(vault):
    vault.put_many(
        [
            ("pk_aaa", "phone", "registry", "jm:1", "13800138000"),
            ("pk_aaa", "phone", "grid", "r:9", "13900000000"),
        ]
    )
    assert values(vault, ["pk_aaa"])["pk_aaa"]["phone"] == ["13900000000", "13800138000"]


def test_none_plaintext_is_skipped(vault):
    assert vault.put_many([("pk_aaa", "phone", "registry", "jm:1", None)]).skipped == 1
    assert vault.get(["pk_aaa"]) == {}


def test_unknown_field_is_refused_with_the_known_ones(vault):
    with pytest.raises(VaultError, match="'religion'.*name, id_number, phone, bank_card, address"):
        vault.put_many([("pk_aaa", "religion", "registry", "jm:1", "x")])


def test_ciphertext_swapped_between_persons_fails_authentication(vault):
    vault.put_many(rows())
    swap(vault, ["pk_aaa", "phone"], ["pk_bbb", "phone"])
    with pytest.raises(VaultIntegrityError, match="key id 'v1'"):
        vault.get(["pk_aaa"], ["phone"])


def test_ciphertext_swapped_between_fields_fails_authentication(vault):
    vault.put_many(rows())
    swap(vault, ["pk_aaa", "phone"], ["pk_aaa", "name"])
    with pytest.raises(VaultIntegrityError, match="'name' of pk_aaa"):
        vault.get(["pk_aaa"], ["name"])


def test_wrong_key_for_a_kid_names_the_kid_and_returns_nothing(tmp_path):
    with Vault.open(tmp_path / "v.duckdb", vault_ring("v1")) as vault:
        vault.put_many(rows())
    impostor = vault_ring("v1")  # same kid, different key
    with (
        Vault.open(tmp_path / "v.duckdb", impostor) as vault,
        pytest.raises(VaultIntegrityError, match="key id 'v1'") as err,
    ):
        vault.get(["pk_aaa"], ["name"])
    assert "张小伟" not in str(err.value)


def test_missing_kid_names_the_kid_and_purpose(tmp_path):
    with Vault.open(tmp_path / "v.duckdb", vault_ring("v1")) as vault:
        vault.put_many(rows())
    with (
        Vault.open(tmp_path / "v.duckdb", vault_ring("v9")) as vault,
        pytest.raises(UnknownKeyIdError, match="'v1' \\(purpose 'vault'\\)"),
    ):
        vault.get(["pk_aaa"])


def test_vault_refuses_a_keyring_of_another_purpose(tmp_path):
    with pytest.raises(VaultError, match="'vault' keyring"):
        Vault.open(tmp_path / "v.duckdb", KeyRing.parse(new_keyring_text(kid="p"), "person_key"))


def test_rotation_reencrypts_every_value_and_keeps_person_keys(vault):
    vault.put_many(rows())
    new = KeyRing.parse(new_keyring_text(kid="v2"), VAULT)
    result = vault.rotate(new, batch_size=3)
    assert (result.active_kid, result.reencrypted, result.already_current, result.batches) == ("v2", 10, 0, 4)
    assert vault.kid_counts() == {"v2": 10}
    assert values(vault) == expected()
    assert {r[0] for r in vault._con.execute("SELECT person_key FROM identifiers").fetchall()} == set(PEOPLE)


def test_values_stay_readable_between_rotation_batches(vault):
    vault.put_many(rows())
    seen = []

    def read_between(progress):
        seen.append((progress.remaining, vault.kid_counts(), values(vault)))

    vault.rotate(KeyRing.parse(new_keyring_text(kid="v2"), VAULT), batch_size=2, on_batch=read_between)
    assert [s[0] for s in seen] == [8, 6, 4, 2, 0]
    assert seen[1][1] == {"v1": 6, "v2": 4}  # a mixed vault mid-way
    assert all(s[2] == expected() for s in seen)


def test_old_key_can_be_dropped_after_rotation(tmp_path):
    old = vault_ring("v1")
    new = KeyRing.parse(new_keyring_text(kid="v2"), VAULT)
    with Vault.open(tmp_path / "v.duckdb", old) as vault:
        vault.put_many(rows())
        vault.rotate(new)
    with Vault.open(tmp_path / "v.duckdb", new) as vault:
        assert values(vault) == expected()


def test_rotation_is_refused_before_any_change_when_a_kid_is_unknown(tmp_path):
    with Vault.open(tmp_path / "v.duckdb", vault_ring("v1")) as vault:
        vault.put_many(rows())
    with Vault.open(tmp_path / "v.duckdb", vault_ring("v0")) as vault:
        with pytest.raises(UnknownKeyIdError, match="'v1'"):
            vault.rotate(vault_ring("v2"))
        assert vault.kid_counts() == {"v1": 10}


def test_vault_file_holds_no_plaintext_bytes(tmp_path):
    with Vault.open(tmp_path / "vault.duckdb", vault_ring("v1")) as vault:
        vault.put_many(rows())
        vault.put_many(rows(system="grid"))
        vault.rotate(KeyRing.parse(new_keyring_text(kid="v2"), VAULT), batch_size=4)
    files = list(tmp_path.glob("vault.duckdb*"))
    data = b"".join(f.read_bytes() for f in files)
    assert data and files
    for fields in PEOPLE.values():
        for plaintext in fields.values():
            assert plaintext.encode("utf-8") not in data, plaintext


def test_vault_never_logs_plaintexts(vault, caplog):
    caplog.set_level(logging.DEBUG)
    vault.put_many(rows())
    values(vault)
    vault.rotate(KeyRing.parse(new_keyring_text(kid="v2"), VAULT))
    assert caplog.records
    for fields in PEOPLE.values():
        for plaintext in fields.values():
            assert plaintext not in caplog.text


def test_a_vault_file_that_is_no_database_is_said_so_at_once_not_held_by_another_process(tmp_path):
    """Only DuckDB's conflicting lock is another process holding the vault (waited for); a damaged file in
    a folder whose name holds "lock" is not waited for, and says what DuckDB found."""
    path = tmp_path / "clockroom" / "vault.duckdb"
    path.parent.mkdir()
    path.write_bytes(b"not a database" * 512)
    with pytest.raises(
        VaultError, match="cannot open the vault .*not a valid DuckDB database file"
    ) as refused:
        Vault.open(path, vault_ring("v1"), wait_s=0.0)
    assert "held by another process" not in str(refused.value)


def test_a_damaged_vault_file_is_said_so_as_a_vault_error(tmp_path):
    """A file whose blocks fail their checksum raises DuckDB's plain Error, not an IOException: still the
    vault's own error naming the file and what DuckDB found, at once."""
    path = damaged_duckdb(tmp_path / "vault.duckdb")
    with pytest.raises(VaultError, match="cannot open the vault .*Corrupt database file"):
        Vault.open(path, vault_ring("v1"), wait_s=0.0)
