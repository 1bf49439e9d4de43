"""The vault and the keyrings a configuration names, opened for the steps that need them.

Each reader raises a `ConfigError` (or the caller's subclass of it) that names the missing ``keys.X``
entry and how to add it, so a step fails before it touches data.

    with open_vault(settings) as vault: ...
"""

from __future__ import annotations

from islandbridge.config import Settings
from islandbridge.errors import ConfigError
from islandbridge.privacy.keys import PERSON_KEY, VAULT, Key, KeyRing
from islandbridge.privacy.vault import Vault

QUARANTINE = "quarantine"


def vault_keyring(settings: Settings) -> KeyRing:
    """The ``keys.vault`` keyring; a `ConfigError` says how to configure it when it is missing."""
    secret = settings.key(
        VAULT,
        "loading seals names, ID numbers and phones in the vault. "
        f"Add `{VAULT}: {{env: IB_VAULT_KEYS}}` under `keys:` (see docs/privacy.md)",
    )
    return KeyRing.from_secret(secret, VAULT)


def open_vault(settings: Settings) -> Vault:
    """The identifier vault, under ``keys.vault``."""
    return Vault.open(settings.vault_path, vault_keyring(settings), resources=settings.duckdb)


def quarantine_keyring(
    settings: Settings, key_name: str = QUARANTINE, error: type[ConfigError] = ConfigError
) -> KeyRing:
    """The keyring that seals quarantined rows (``keys.quarantine``); ``error`` says how to add it."""
    secret = settings.key(
        key_name,
        f"rows must be quarantined, sealed under it; add '{key_name}: "
        "{env: IB_QUARANTINE_KEYS}' to the keys section and put a keyring in "
        "that variable (make one with islandbridge.privacy.keys.new_keyring_text())",
        error,
    )
    return KeyRing.from_secret(secret, QUARANTINE)


def person_mac_key(settings: Settings) -> Key:
    """The configured ``person_key`` MAC key; a clear `ConfigError` naming the key reference when absent."""
    secret = settings.key(
        PERSON_KEY,
        f"identity reconciliation derives every person_key from it. Add `{PERSON_KEY}: "
        '{env: IB_PERSON_KEY}` under `keys:` and set IB_PERSON_KEY to a key made with `python -c "from '
        "islandbridge.privacy.keys import new_keyring_text; print(new_keyring_text(kid='pk1'))\"` "
        "(see docs/privacy.md)",
    )
    return KeyRing.from_secret(secret, PERSON_KEY).single()
