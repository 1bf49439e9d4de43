"""Pseudonyms: the warehouse's ``person_key`` and each department's ``person_ref``.

``person_key`` is HMAC-SHA256 of a person's canonical identity under the ``person_key`` MAC key. A bare
hash would not do: an 18-digit 身份证 number has far less entropy than its length suggests (a region
code, a birth date, a 3-digit sequence and a check digit), so SHA-256 of every valid number in a
district can be computed in minutes and the "pseudonym" reversed by lookup. With a secret key nobody
without the key can compute the mapping at all.

``person_ref`` is HMAC-SHA256 of the ``person_key`` under a department's own key, prefixed with the
department's short code: stable from run to run, different between departments, so two departments
cannot join their exports on it, and neither can reach the ``person_key`` from it.

Both are 128 bits (the first 16 bytes of the MAC) in lower-case hex after a prefix, e.g.
``pk_3f9a…`` (35 characters) and ``gc_8d01…``. Each MAC input is prefixed with a context label, so the
same key used by mistake for two purposes would still give unrelated outputs.

Example::

    pk = person_key(keys.person_key, "510104196812225052")
    ref = person_ref(keys.department("grid_centre"), pk)     # 'gc_…'
    person_keys(keys.person_key, pa.array(["510104196812225052", None]))  # nulls stay null
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
from cryptography.hazmat.primitives import hashes, hmac

from islandbridge.privacy.keys import DEPT_PREFIX, PERSON_KEY, Key

PERSON_KEY_PREFIX = "pk_"
DIGEST_BYTES = 16

# Departments and the short codes that prefix their person_refs (see /work/shared/DEPARTMENTS.md).
DEPARTMENT_CODES: Mapping[str, str] = {
    "grid_centre": "gc",
    "civil_affairs": "ca",
    "street_office": "so",
}

_PERSON_KEY_CONTEXT = b"islandbridge/person_key/v1\x00"
_PERSON_REF_CONTEXT = b"islandbridge/person_ref/v1\x00"

ArrayLike = pa.Array | pa.ChunkedArray | Iterable[str | None]


def person_key(mac_key: Key, canonical_identity: str) -> str:
    """The warehouse pseudonym of one person: ``pk_`` + 32 hex digits, deterministic for a key.

    ``canonical_identity`` must already be canonical (e.g. a normalised 18-character ID number); it is
    taken byte for byte. Raises ``ValueError`` for an empty identity or a key of another purpose.

    >>> from islandbridge.privacy.keys import Key
    >>> person_key(Key("person_key", "p1", bytes(32)), "510104196812225052")[:3]
    'pk_'
    """
    return person_keys(mac_key, [canonical_identity]).to_pylist()[0] or _empty()


def person_ref(dept_key: Key, person_key: str) -> str:
    """A department's pseudonym for a ``person_key``: its short code, ``_``, 32 hex digits.

    ``dept_key`` is the department's own key (purpose ``dept:<name>``). Raises ``ValueError`` for an
    empty ``person_key``, a key of another purpose, or a department without a short code.
    """
    return person_refs(dept_key, [person_key]).to_pylist()[0] or _empty()


def person_keys(mac_key: Key, identities: ArrayLike) -> pa.StringArray:
    """``person_key`` of each identity in an Arrow array or iterable; nulls stay null.

    About 2 s per million identities on one core. Raises ``ValueError`` for an empty string.
    """
    if mac_key.purpose != PERSON_KEY:
        raise ValueError(f"person_key needs the {PERSON_KEY!r} key, got {mac_key!r}")
    return _mac_all(mac_key, _PERSON_KEY_CONTEXT, PERSON_KEY_PREFIX, identities)


def person_refs(dept_key: Key, person_keys: ArrayLike) -> pa.StringArray:
    """``person_ref`` of each ``person_key`` for the department that owns ``dept_key``; nulls stay null."""
    code = department_code(dept_key)
    return _mac_all(dept_key, _PERSON_REF_CONTEXT, f"{code}_", person_keys)


def department_code(dept_key: Key) -> str:
    """The short code of the department whose key this is; ``ValueError`` lists the known ones."""
    if not dept_key.purpose.startswith(DEPT_PREFIX):
        raise ValueError(f"person_ref needs a department key (purpose 'dept:<name>'), got {dept_key!r}")
    department = dept_key.purpose.removeprefix(DEPT_PREFIX)
    try:
        return DEPARTMENT_CODES[department]
    except KeyError:
        known = ", ".join(sorted(DEPARTMENT_CODES))
        raise ValueError(f"department {department!r} has no short code; known departments: {known}") from None


def _mac_all(key: Key, context: bytes, prefix: str, values: ArrayLike) -> pa.StringArray:
    # A keyed HMAC state is copied per value: the key schedule and the context are paid once.
    base = hmac.HMAC(key.material, hashes.SHA256())
    base.update(context)
    out: list[str | None] = []
    for value in _as_pylist(values):
        if value is None:
            out.append(None)
            continue
        if not value:
            _empty()
        mac = base.copy()
        mac.update(value.encode("utf-8"))
        out.append(prefix + mac.finalize()[:DIGEST_BYTES].hex())
    return pa.array(out, type=pa.string())


def _as_pylist(values: ArrayLike) -> list[str | None]:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.to_pylist()
    if isinstance(values, str):
        raise TypeError("expected an array or an iterable of strings, not a single string")
    return list(values)


def _empty() -> str:
    raise ValueError("cannot pseudonymise an empty identity; drop or quarantine the record instead")
