"""Keyrings: parsed from configuration, errors that name the key id and never the key."""

from __future__ import annotations

import base64

import pytest

from islandbridge.config import Secret
from islandbridge.privacy.keys import (
    PERSON_KEY,
    VAULT,
    KeyRing,
    KeyringError,
    UnknownKeyIdError,
    keyring_entries,
    load_keys,
    new_keyring_text,
)

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(1, 33))).decode()


def test_first_entry_is_the_active_key():
    ring = KeyRing.parse(f"a:{KEY_A},b:{KEY_B}", VAULT)
    assert ring.active.kid == "a"
    assert ring.kids == ("a", "b")


def test_star_marks_the_active_key():
    assert KeyRing.parse(f"a:{KEY_A}, *b:{KEY_B}", VAULT).active.kid == "b"


def test_keyring_entries_split_text_as_parse_reads_it():
    """Commas, spaces and new lines separate entries; each comes back as written, its ``*`` mark kept."""
    text = f"\n a:{KEY_A},\n*b:{KEY_B}  \n"
    assert keyring_entries(text) == [f"a:{KEY_A}", f"*b:{KEY_B}"]
    assert [e.lstrip("*").split(":")[0] for e in keyring_entries(text)] == list(
        KeyRing.parse(text, VAULT).kids
    )


def test_urlsafe_base64_without_padding_is_accepted():
    urlsafe = base64.urlsafe_b64encode(bytes(range(200, 232))).decode().rstrip("=")
    assert KeyRing.parse(f"u:{urlsafe}", VAULT).active.material == bytes(range(200, 232))


def test_unknown_kid_error_names_kid_and_purpose():
    ring = KeyRing.parse(f"a:{KEY_A}", VAULT)
    with pytest.raises(UnknownKeyIdError, match="'gone'.*'vault'") as err:
        ring.key("gone")
    assert err.value.kid == "gone" and err.value.purpose == VAULT


def test_malformed_key_error_names_entry_and_kid_but_not_material():
    with pytest.raises(KeyringError) as err:
        KeyRing.parse(f"a:{KEY_A},b:{KEY_B[:-8]}", VAULT)
    message = str(err.value)
    assert "entry 2" in message and "'b'" in message
    assert KEY_B[:-8] not in message and KEY_A not in message


def test_entry_without_kid_is_refused_without_echoing_it():
    with pytest.raises(KeyringError, match="no 'kid:' prefix") as err:
        KeyRing.parse(KEY_A, VAULT)
    assert KEY_A not in str(err.value)


def test_two_active_marks_are_refused():
    with pytest.raises(KeyringError, match="more than one"):
        KeyRing.parse(f"*a:{KEY_A},*b:{KEY_B}", VAULT)


def test_repr_hides_key_material():
    ring = KeyRing.parse(f"a:{KEY_A}", VAULT)
    shown = repr(ring) + repr(ring.active) + str(ring.active)
    assert KEY_A not in shown and repr(bytes(range(32))) not in shown
    assert "a" in repr(ring)


def test_load_keys_reports_every_missing_key_at_once():
    with pytest.raises(KeyringError) as err:
        load_keys({}, departments=["grid_centre"])
    message = str(err.value)
    assert message.startswith("3 key problems:")
    assert "keys.person_key" in message and "keys.vault" in message and "keys.dept:grid_centre" in message


def test_one_missing_key_is_one_key_problem():
    """The count is worded as English reads it: "1 key problem", not "1 key problem(s)"."""
    with pytest.raises(KeyringError, match=r"^1 key problem:\n  - keys\.dept:grid_centre"):
        load_keys(
            {"person_key": Secret(f"p1:{KEY_A}", "x"), "vault": Secret(f"v1:{KEY_B}", "y")}, ["grid_centre"]
        )


def test_load_keys_builds_every_purpose_from_secrets():
    secrets = {
        "person_key": Secret(f"p1:{KEY_A}", "env:IB_PERSON_KEY"),
        "vault": Secret(f"v2:{KEY_B},v1:{KEY_A}", "env:IB_VAULT_KEYS"),
        "dept:grid_centre": Secret(f"g1:{KEY_B}", "env:IB_DEPT_GC"),
    }
    keys = load_keys(secrets, departments=["grid_centre"])
    assert (keys.person_key.kid, keys.vault.active.kid) == ("p1", "v2")
    assert keys.department("grid_centre").purpose == "dept:grid_centre"


def test_missing_department_lists_configured_ones():
    keys = load_keys({"person_key": Secret(f"p1:{KEY_A}", "x"), "vault": Secret(f"v1:{KEY_A}", "y")})
    with pytest.raises(KeyringError, match="'civil_affairs'.*configured departments: \\(none\\)"):
        keys.department("civil_affairs")


def test_person_key_purpose_refuses_a_ring_of_two():
    secrets = {
        "person_key": Secret(f"p2:{KEY_B},p1:{KEY_A}", "env:IB_PERSON_KEY"),
        "vault": Secret(f"v1:{KEY_A}", "env:IB_VAULT_KEYS"),
    }
    with pytest.raises(KeyringError, match="'person_key' must hold exactly one key"):
        load_keys(secrets)


def test_secret_errors_name_the_reference_not_the_value():
    with pytest.raises(KeyringError) as err:
        KeyRing.from_secret(Secret("v1:not-a-key!!", "env:IB_VAULT_KEYS"), VAULT)
    assert "env:IB_VAULT_KEYS" in str(err.value) and "not-a-key" not in str(err.value)


def test_new_keyring_text_puts_a_fresh_key_first():
    first = new_keyring_text(kid="k1")
    ring = KeyRing.parse(new_keyring_text(first, kid="k2"), VAULT)
    assert ring.kids == ("k2", "k1") and ring.active.kid == "k2"
    assert ring.key("k1").material == KeyRing.parse(first, VAULT).active.material


def test_new_keyring_text_refuses_a_kid_already_present():
    with pytest.raises(KeyringError, match="already"):
        new_keyring_text(new_keyring_text(kid="k1"), kid="k1")


def test_generated_keys_differ():
    assert (
        KeyRing.parse(new_keyring_text(kid="a"), PERSON_KEY).active.material
        != KeyRing.parse(new_keyring_text(kid="a"), PERSON_KEY).active.material
    )


def test_merging_refuses_one_kid_with_two_keys():
    with pytest.raises(KeyringError, match="'a' has two different keys"):
        KeyRing.parse(f"a:{KEY_A}", VAULT).merged(KeyRing.parse(f"a:{KEY_B}", VAULT))
