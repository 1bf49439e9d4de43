"""Columnar sealing for the vault: associated data, nonces, ciphertexts and digests built per Arrow column.

AES-256-GCM seals one value at a time (`cryptography`'s ``AESGCM``), but everything around it is built a
column at a time: the associated data of every row from its key columns (the same bytes as
``json.dumps([label, format, *key], ensure_ascii=False)``, which older rows were sealed with), all the
nonces from one draw of the system's random source, and the staged rows as Arrow arrays, so sealing a
batch costs one encryption per value and no per-row JSON, dict or SQL.

Example::

    aads = associated_data("islandbridge-vault", "1", [person_keys, fields, systems, record_keys])
    nonces, ciphertexts = seal_column(AESGCM(key), values, aads)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
_DIGEST_LABEL = b"islandbridge-vault-record-digest"
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # what json.dumps(..., ensure_ascii=False) escapes in a string


def associated_data(
    label: str, version: str, key_columns: Sequence[pa.Array | pa.ChunkedArray]
) -> list[bytes]:
    """Per row, ``json.dumps([label, version, *key], ensure_ascii=False)`` as UTF-8 bytes."""
    head = json.dumps([label, version], ensure_ascii=False)[:-1]  # '["label", "1"' without its bracket
    joined = pc.binary_join_element_wise(head, *map(_json_string, key_columns), ", ")
    return pc.cast(pc.binary_join_element_wise(joined, "]", ""), pa.binary()).to_pylist()


def seal_column(
    cipher: AESGCM, plaintexts: pa.Array | pa.ChunkedArray, aads: Sequence[bytes]
) -> tuple[pa.Array, pa.Array]:
    """(nonces, ciphertexts) of UTF-8 ``plaintexts``, each with a fresh random nonce and its row's ``aads``."""
    plains = pc.cast(plaintexts, pa.binary()).to_pylist()
    pool = secrets.token_bytes(NONCE_BYTES * len(plains))
    nonces = [pool[i : i + NONCE_BYTES] for i in range(0, len(pool), NONCE_BYTES)]
    encrypt = cipher.encrypt
    sealed = [encrypt(n, p, a) for n, p, a in zip(nonces, plains, aads, strict=True)]
    return pa.array(nonces, pa.binary()), pa.array(sealed, pa.binary())


def digest_key(material: bytes) -> bytes:
    """The key a record version's digest is keyed with, derived from a vault key (never the key itself)."""
    return hmac.new(material, _DIGEST_LABEL, hashlib.sha256).digest()


def digest(key: bytes, plain: bytes) -> bytes:
    """A keyed digest of a sealed plaintext: equal plaintexts (under one key) give equal digests, and the
    digest alone tells nothing of the plaintext without the vault key. HMAC-SHA-256 cut to 128 bits: it
    only tells one version of a record from the next, and is stored once per sealed version."""
    return hmac.new(key, plain, hashlib.sha256).digest()[:16]


def string_table(rows: Iterable[Sequence[str]] | pa.Table, names: Sequence[str]) -> pa.Table:
    """Tuples (or an Arrow table with those columns) as an Arrow table of string columns ``names``."""
    if isinstance(rows, pa.Table):
        return rows.select(list(names))
    rows = list(rows)
    return pa.table({name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(names)})


def _json_string(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each string as a JSON string literal (``json.dumps(value, ensure_ascii=False)``)."""
    column = pc.cast(column, pa.string())
    if not pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPE)).as_py():
        return pc.binary_join_element_wise('"', column, '"', "")
    return pa.array([json.dumps(v, ensure_ascii=False) for v in column.to_pylist()], pa.string())
