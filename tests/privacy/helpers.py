"""Fresh keys for the privacy tests; key material is generated per test, never stored."""

from __future__ import annotations

from islandbridge.privacy.keys import (
    PERSON_KEY,
    VAULT,
    Key,
    KeyRing,
    dept_purpose,
    generate_key,
    new_keyring_text,
)


def mac_key(purpose: str = PERSON_KEY, kid: str = "p1") -> Key:
    return Key(purpose, kid, generate_key())


def dept_key(department: str, kid: str = "d1") -> Key:
    return mac_key(dept_purpose(department), kid)


def vault_ring(*kids: str) -> KeyRing:
    """A vault keyring with fresh keys; the first kid is active."""
    text = None
    for kid in reversed(kids):
        text = new_keyring_text(text, kid=kid)
    return KeyRing.parse(text, VAULT)
