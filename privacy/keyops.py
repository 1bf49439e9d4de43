"""Operator key procedures behind ``islandbridge keys``: status, add, rotate, retire.

Rotating the vault key, without downtime and without changing any ``person_key``::

    islandbridge keys add --config F --purpose vault --kid v2026b   # new key first in the keyring file
    islandbridge keys rotate --config F                             # re-encrypt, batch by batch
    islandbridge keys status --config F                             # v2026a: 0 values left
    islandbridge keys retire --config F --purpose vault --kid v2026a

The quarantine key (both quarantines' sealed rows, in the warehouse: `rowseal`) goes the same way with
``--purpose quarantine``; its ``rotate`` writes the warehouse, so run it between syncs (a sync holding
the warehouse makes it fail with DuckDB's lock error, and nothing is changed).

``add`` and ``retire`` edit a keyring that the configuration references as ``{file: PATH}`` (an
``{env: NAME}`` secret lives in the operator's secret store: update it there, then ``rotate``). Key
material is written to that file only (mode 0600), never printed. ``rotate`` opens the vault for a few
batches at a time and lets go of it in between, so a sync that needs the vault waits a moment rather than
failing; every value stays readable throughout, because the configured ring holds the old and new keys.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from islandbridge import storage
from islandbridge.config import Settings
from islandbridge.errors import ConfigError, count, noun
from islandbridge.privacy import rowseal
from islandbridge.privacy.configured import quarantine_keyring, vault_keyring
from islandbridge.privacy.keys import VAULT, KeyRing, KeyringError, keyring_entries, new_keyring_text
from islandbridge.privacy.masking import mask_typed
from islandbridge.privacy.sealed_files import SealedFileError, reseal, sealed_kids
from islandbridge.privacy.vault import Vault

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
_ROTATABLE = (VAULT, QUARANTINE)


def status(settings: Settings, purpose: str = VAULT) -> dict[str, Any]:
    """Which key ids are configured for ``purpose`` and how many sealed values each still protects."""
    ring = _ring(settings, purpose)
    counts = _kid_counts(settings, purpose, ring)
    return {
        "purpose": purpose,
        "active": ring.active.kid,
        "configured": list(ring.kids),
        "values_per_kid": counts,
        **({"kept_files_per_kid": _kept_kids(settings)} if purpose == VAULT else {}),
        "unknown_kids": sorted(set(counts) - set(ring.kids)),
    }


def add_key(settings: Settings, purpose: str, kid: str | None = None) -> dict[str, Any]:
    """Put a fresh key first (active) in the keyring file of ``purpose``; the old keys stay to decrypt.
    Only the vault's and the quarantine's: a second person_key or department key is a re-keying."""
    _check_rotatable(purpose)
    path = _keyring_file(settings, purpose)
    text = new_keyring_text(path.read_text(encoding="ascii").strip(), kid=kid)
    _write_secret(path, text)
    ring = KeyRing.parse(text, purpose)
    log.info(
        "added key id %s to the %s keyring (%s); it now seals new values", ring.active.kid, purpose, path
    )
    return {"purpose": purpose, "active": ring.active.kid, "configured": list(ring.kids), "file": str(path)}


def rotate(
    settings: Settings,
    purpose: str = VAULT,
    *,
    batch_size: int = 5_000,
    batches_per_hold: int = 4,
    kept_files: Iterable[tuple[Path, bytes]] = (),
) -> dict[str, Any]:
    """Re-encrypt every value of ``purpose`` not under the configured active key. Person keys do not change.

    The vault is held ``batches_per_hold`` batches at a time, then released so that other steps can use it;
    the quarantine's rows are re-sealed in the warehouse one transaction per batch. ``kept_files`` are the
    files the identity step keeps beside the vault, sealed under its key, each with its associated data
    (`identity.reuse.kept_files`, `identity.scoring.kept_files`): re-sealed too, so that no copy of a name
    stays under the old key.
    """
    _check_rotatable(purpose)
    if purpose == QUARANTINE:
        return _rotate_quarantine(settings, batch_size)
    ring = vault_keyring(settings)
    total = held = 0
    while True:
        with Vault.open(settings.vault_path, ring) as vault:
            result = vault.rotate(ring, batch_size=batch_size, max_batches=batches_per_hold)
            remaining = sum(n for kid, n in vault.kid_counts().items() if kid != ring.active.kid)
        total, held = total + result.reencrypted, held + 1
        if remaining == 0:
            break
    resealed, unreadable = 0, []
    # held like the vault: a reconcile, which writes these files, holds it for its whole run
    candidates: dict[Path, list[bytes]] = {}
    for path, aad in kept_files:  # a file may come with several candidate associated data
        candidates.setdefault(path, []).append(aad)
    with Vault.open(settings.vault_path, ring):
        for path, aads in candidates.items():
            if not path.is_file():
                continue  # gone since it was listed (a model's frequencies replaced)
            why = ""
            for aad in aads:
                try:
                    resealed += reseal(ring, path, aad)
                    break
                except SealedFileError as exc:
                    why = type(exc.__cause__).__name__
            else:  # damaged, or its key is gone: left as it is, and said
                unreadable.append(f"{path.name} ({why})")
    log.info(
        "vault rotated to key id %s: %s re-encrypted (%s), %s re-sealed",
        ring.active.kid,
        count(total, "value"),
        count(held, "hold"),
        count(resealed, "kept file"),
    )
    left = {kid: n for kid, n in _kept_kids(settings).items() if kid != ring.active.kid}
    return {
        "purpose": VAULT,
        "active": ring.active.kid,
        "reencrypted": total,
        "holds": held,
        "kept_files_resealed": resealed,
        **({"kept_files_unreadable": unreadable} if unreadable else {}),
        **({"kept_files_left_per_kid": left} if left else {}),
        "retirable": [k for k in ring.kids if k != ring.active.kid and k not in left],
    }


def _rotate_quarantine(settings: Settings, batch_size: int) -> dict[str, Any]:
    ring = quarantine_keyring(settings)
    if not settings.warehouse_path.exists():
        total = 0
    else:
        con = storage.connect(str(settings.warehouse_path), resources=settings.duckdb)
        try:
            total = rowseal.rotate(con, ring, batch_size=batch_size)
        finally:
            con.close()
    log.info("quarantine rotated to key id %s: %d rows re-sealed", ring.active.kid, total)
    return {
        "purpose": QUARANTINE,
        "active": ring.active.kid,
        "reencrypted": total,
        "retirable": [k for k in ring.kids if k != ring.active.kid],
    }


def retire_key(settings: Settings, purpose: str, kid: str) -> dict[str, Any]:
    """Remove ``kid`` from the keyring file, refusing while any value of ``purpose`` is still sealed under it."""
    _check_rotatable(purpose)
    path = _keyring_file(settings, purpose)
    ring = KeyRing.parse(path.read_text(encoding="ascii").strip(), purpose)
    if kid not in ring:
        raise KeyringError(
            f"key id {mask_typed(kid)!r} is not in the {purpose} keyring ({', '.join(ring.kids)})"
        )
    if kid == ring.active.kid:
        raise KeyringError(f"key id {kid!r} is the active {purpose} key; add a new key and rotate first")
    left = _kid_counts(settings, purpose, ring).get(kid, 0)
    if left:
        raise KeyringError(
            f"{left:,} {purpose} {noun(left, 'value')} {noun(left, 'is', 'are')} still sealed under key id {kid!r}; run `islandbridge "
            f"keys rotate --purpose {purpose}` first"
        )
    files = _kept_kids(settings).get(kid, 0) if purpose == VAULT else 0
    if files:
        raise KeyringError(
            f"{count(files, 'file')} the identity step keeps beside the vault {noun(files, 'is', 'are')} still sealed under key id "
            f"{kid!r}; run `islandbridge keys rotate --purpose vault` first"
        )
    entries = keyring_entries(path.read_text(encoding="ascii"))
    _write_secret(path, ",".join(e for e in entries if e.lstrip("*").split(":", 1)[0] != kid))
    log.info("retired key id %s from the %s keyring (%s)", kid, purpose, path)
    return {"purpose": purpose, "retired": kid, "configured": [k for k in ring.kids if k != kid]}


def _check_rotatable(purpose: str) -> None:
    if purpose not in _ROTATABLE:
        raise ConfigError(
            f"keys add, rotate and retire support {', '.join(_ROTATABLE)}; got {purpose!r} (the person_key "
            "and department keys are never rotated: a new one re-keys every pseudonym, see docs/privacy.md)"
        )


def _ring(settings: Settings, purpose: str) -> KeyRing:
    _check_rotatable(purpose)
    return quarantine_keyring(settings) if purpose == QUARANTINE else vault_keyring(settings)


def _kid_counts(settings: Settings, purpose: str, ring: KeyRing) -> dict[str, int]:
    """Sealed values per key id: the vault's, or both quarantines' rows in the warehouse."""
    if purpose == VAULT:
        with Vault.open(settings.vault_path, ring) as vault:
            return vault.kid_counts()
    if not settings.warehouse_path.exists():
        return {}
    con = storage.connect(str(settings.warehouse_path), read_only=True, resources=settings.duckdb)
    try:
        return rowseal.kid_counts(con)
    finally:
        con.close()


def _kept_kids(settings: Settings) -> dict[str, int]:
    """The files kept beside the vault (normalised records, linkage scores and frequencies) per key id."""
    return sealed_kids(settings.vault_path.parent) if settings.vault_path is not None else {}


def _keyring_file(settings: Settings, purpose: str) -> Path:
    secret = settings.key(purpose, "add its keyring file under `keys:` first (see docs/privacy.md)")
    if not secret.reference.startswith("file:"):
        raise ConfigError(
            f"keys.{purpose} comes from {secret.reference}: change it in that secret store (make the "
            "new ring with islandbridge.privacy.keys.new_keyring_text), then run `keys rotate`"
        )
    return Path(secret.reference.removeprefix("file:"))


def _write_secret(path: Path, text: str) -> None:
    """Replace a secret file atomically, owner-only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
