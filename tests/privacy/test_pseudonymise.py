"""person_key and person_ref: keyed, deterministic, and separate per department."""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.privacy.keys import PERSON_KEY, Key
from islandbridge.privacy.pseudonymise import person_key, person_keys, person_ref, person_refs
from tests.privacy.helpers import dept_key, mac_key

ID = "510104196812225052"
keys_bytes = st.binary(min_size=32, max_size=32)
identities = st.text(min_size=1, max_size=40)


@settings(deadline=None)  # the first example pays for importing and warming up pyarrow
@given(material=keys_bytes, identity=identities)
def test_person_key_is_stable_for_a_key(material, identity):
    assert person_key(Key(PERSON_KEY, "a", material), identity) == person_key(
        Key(PERSON_KEY, "b", bytes(material)), identity
    )


@settings(deadline=None)
@given(a=keys_bytes, b=keys_bytes, identity=identities)
def test_person_key_changes_with_the_key(a, b, identity):
    if a != b:
        assert person_key(Key(PERSON_KEY, "a", a), identity) != person_key(Key(PERSON_KEY, "b", b), identity)


def test_person_key_is_not_a_bare_hash_of_the_identity():
    pk = person_key(mac_key(), ID)
    bare = hashlib.sha256(ID.encode()).hexdigest()
    assert pk.removeprefix("pk_") not in bare
    assert pk.removeprefix("pk_") != hashlib.md5(ID.encode()).hexdigest()


def test_person_key_has_prefix_and_128_bit_hex():
    assert re.fullmatch(r"pk_[0-9a-f]{32}", person_key(mac_key(), ID))


def test_person_key_differs_between_identities():
    key = mac_key()
    assert person_key(key, ID) != person_key(key, "51010419681222505X")


def test_person_refs_differ_between_departments():
    pk = person_key(mac_key(), ID)
    grid, civil = person_ref(dept_key("grid_centre"), pk), person_ref(dept_key("civil_affairs"), pk)
    assert grid.startswith("gc_") and civil.startswith("ca_")
    assert grid[3:] != civil[3:]


def test_person_ref_is_stable_across_runs():
    material = dept_key("grid_centre").material
    pk = person_key(mac_key(), ID)
    first = person_ref(Key("dept:grid_centre", "g1", material), pk)
    assert person_ref(Key("dept:grid_centre", "g1", material), pk) == first


def test_person_ref_does_not_reveal_the_person_key():
    pk = person_key(mac_key(), ID)
    assert pk[3:] not in person_ref(dept_key("street_office"), pk)


def test_vectorised_person_keys_match_scalar_and_keep_nulls():
    key = mac_key()
    out = person_keys(key, pa.array([ID, None, "x"]))
    assert out.type == pa.string()
    assert out.to_pylist() == [person_key(key, ID), None, person_key(key, "x")]


def test_vectorised_person_refs_accept_chunked_arrays():
    key, dept = mac_key(), dept_key("grid_centre")
    pks = pa.chunked_array([[person_key(key, ID)], [None]])
    assert person_refs(dept, pks).to_pylist() == [person_ref(dept, person_key(key, ID)), None]


def test_empty_identity_is_refused():
    with pytest.raises(ValueError, match="empty identity"):
        person_keys(mac_key(), ["ok", ""])


def test_key_of_another_purpose_is_refused():
    with pytest.raises(ValueError, match="'person_key' key"):
        person_key(dept_key("grid_centre"), ID)
    with pytest.raises(ValueError, match="department key"):
        person_ref(mac_key(), "pk_x")


def test_department_without_short_code_lists_known_ones():
    with pytest.raises(ValueError, match="'police'.*civil_affairs, grid_centre, street_office"):
        person_ref(dept_key("police"), "pk_x")
