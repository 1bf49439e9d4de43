"""Arrow tables kept beside the vault, sealed under the vault key: owner-only files that only it opens.

The identity step keeps work between runs that holds personal data — normalised records
(`identity.reuse`), the linkage model's name frequencies and its scored pairs (`identity.scoring`). Each
such file is one AES-256-GCM ciphertext of Arrow IPC streams: ``len(kid) · kid · nonce · ciphertext``,
the associated data naming what the file is (``aad``), so a file moved to another name fails to open.
It is written to a staged name and moved into place (a reader never sees half a file), mode 0600 in a
0700 folder::

    write_tables(vault.keyring, path, aad, {"rows": table}, context="…")
    tables, context = read_tables(vault.keyring, path, aad)   # raises SealedFileError when it cannot
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from islandbridge.errors import TerminalError
from islandbridge.privacy.keys import KeyRing, KeyringError, is_kid
from islandbridge.privacy.vault_columns import NONCE_BYTES
from islandbridge.storage import owner_only


class SealedFileError(TerminalError):
    """A kept file cannot be opened: its key left the ring, it was damaged or moved. The caller redoes
    the work it kept (``type(exc.__cause__).__name__`` says why, never a value)."""


def write_tables(
    keyring: KeyRing, path: Path, aad: bytes, tables: Mapping[str, pa.Table], context: str = ""
) -> None:
    """Seal ``tables`` (by name) and ``context`` into ``path`` under the ring's active key."""
    header, parts = {"context": context, "tables": []}, []
    for name, table in tables.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        parts.append(sink.getvalue().to_pybytes())
        header["tables"].append([name, len(parts[-1])])
    head = json.dumps(header).encode("utf-8")
    write_sealed(keyring, path, aad, len(head).to_bytes(4, "big") + head + b"".join(parts))


def read_tables(keyring: KeyRing, path: Path, aad: bytes) -> tuple[dict[str, pa.Table], str]:
    """The tables and context `write_tables` sealed into ``path``; raises `SealedFileError`."""
    plain = read_sealed(keyring, path, aad)
    try:
        width = int.from_bytes(plain[:4], "big")
        header = json.loads(plain[4 : 4 + width])
        at, tables = 4 + width, {}
        for name, size in header["tables"]:
            tables[name] = pa.ipc.open_stream(plain[at : at + size]).read_all()
            at += size
    except (ValueError, KeyError, TypeError, pa.ArrowInvalid) as exc:
        raise SealedFileError(f"{path.name} is damaged") from exc
    return tables, header["context"]


def sealed_kid(path: Path) -> str | None:
    """The id of the key ``path`` is sealed under (None when it cannot be told): a caller re-seals a file
    kept for long under the active key, so that retiring an old key does not lose it."""
    head = path.read_bytes()[:256]
    try:
        return head[1 : 1 + head[0]].decode("utf-8")
    except (IndexError, UnicodeDecodeError):
        return None


def reseal(keyring: KeyRing, path: Path, aad: bytes) -> bool:
    """``path`` sealed again under the ring's active key, when another key sealed it; True when it was.
    Raises `SealedFileError` when it cannot be opened."""
    if sealed_kid(path) == keyring.active.kid:
        return False
    write_sealed(keyring, path, aad, read_sealed(keyring, path, aad))
    return True


def sealed_kids(directory: Path) -> dict[str, int]:
    """How many ``*.sealed`` files under ``directory`` each key id seals (``?`` where it cannot be told,
    or the file does not start with a key id)."""
    counts: dict[str, int] = {}
    for path in sorted(directory.rglob("*.sealed")) if directory.is_dir() else ():
        kid = sealed_kid(path) or "?"
        kid = kid if is_kid(kid) else "?"  # not a file sealed here: its first bytes are not shown
        counts[kid] = counts.get(kid, 0) + 1
    return counts


def spill_folder(directory: Path) -> Path:
    """``directory/spill``, owner-only in an owner-only ``directory``: where a DuckDB connection that holds
    kept work in plaintext (decrypted rows, names in pinyin) may spill, instead of the system's temporary
    folder."""
    folder = directory / "spill"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    owner_only(directory, 0o700)
    owner_only(folder, 0o700)
    return folder


def write_sealed(keyring: KeyRing, path: Path, aad: bytes, plain: bytes) -> None:
    """``plain`` sealed into ``path`` (staged, then moved into place), owner-only in an owner-only folder."""
    kid = keyring.active.kid
    nonce = os.urandom(NONCE_BYTES)
    blob = bytes([len(kid.encode("utf-8"))]) + kid.encode("utf-8") + nonce
    blob += AESGCM(keyring.key(kid).material).encrypt(nonce, plain, aad)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    owner_only(path.parent, 0o700)
    staged = path.with_suffix(".staged")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    owner_only(staged, 0o600)
    os.replace(staged, path)


def read_sealed(keyring: KeyRing, path: Path, aad: bytes) -> bytes:
    """The plaintext `write_sealed` sealed into ``path``; raises `SealedFileError` when it cannot."""
    blob = path.read_bytes()
    try:
        width = blob[0]
        kid, nonce = blob[1 : 1 + width].decode("utf-8"), blob[1 + width : 1 + width + NONCE_BYTES]
        cipher = AESGCM(keyring.key(kid).material)
        return cipher.decrypt(nonce, blob[1 + width + NONCE_BYTES :], aad)
    except (IndexError, ValueError, UnicodeDecodeError, KeyringError, InvalidTag) as exc:
        raise SealedFileError(f"{path.name} cannot be opened") from exc
