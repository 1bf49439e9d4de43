"""Quarantined rows sealed: AES-256-GCM under the ``quarantine`` keyring, bound to where each row belongs.

Two warehouse tables keep rows set aside as ciphertext: ``meta.quarantine`` (records a connector could
not read, `CONNECTOR`) and ``meta.quality_quarantine`` (rows that failed a row-level check, `QUALITY`).
Both hold ``run_id, source, stream, record_key, seq, kid, nonce, ciphertext``; the associated data of
each ciphertext names its table's label and format and the row's (run, source, stream, record key,
seq), so a ciphertext moved to another row, or to the other table, fails to open.

The record key is stored, and bound, scrubbed (`stored_key`): a roster is keyed by its 序号, into which a
clerk may type an ID number, and such a row is exactly one the quality gate sets aside. ``seq`` still
numbers the copies of the whole key, so two keys that scrub alike may share a place; the nonce tells them
apart. `scrub_stored_keys` re-seals the rows of warehouses from before, which stored keys whole.

`rotate` re-seals the rows of both tables that are not under the active key, batch by batch, so that an
old quarantine key can be retired (``islandbridge keys rotate --purpose quarantine``)::

    counts = kid_counts(con)                 # {"q2026a": 36}
    rotate(con, ring)                        # 36 re-sealed under ring.active
    scrub_stored_keys(con, ring)             # 0 once every key is stored scrubbed
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from islandbridge.privacy.keys import Key, KeyRing
from islandbridge.privacy.scrub import scrub
from islandbridge.storage import registered, transaction

NONCE_BYTES = 12
PLACE = ("run_id", "source", "stream", "record_key", "seq")  # the columns the associated data binds


@dataclass(frozen=True)
class RowSeal:
    """How one quarantine table seals its rows: its table, and the label and format its AAD starts with."""

    table: str
    label: str
    version: str

    def aad(self, run_id: str, source: str, stream: str, record_key: str, seq: int) -> bytes:
        return json.dumps(
            [self.label, self.version, run_id, source, stream, record_key, seq], ensure_ascii=False
        ).encode("utf-8")

    def seal(self, key: Key, plain: bytes, *place: Any) -> tuple[bytes, bytes]:
        """(nonce, ciphertext) of ``plain`` under ``key``, bound to ``place`` (`PLACE`, in order)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce, AESGCM(key.material).encrypt(nonce, plain, self.aad(*place))

    def seal_rows(
        self, key: Key, run_id: str, source: str, rows: Iterable[tuple[str, str, bytes]]
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """(seq, nonce, ciphertext) for each (stream, record key, plaintext) in landing order: ``seq``
        numbers the copies of one record key from 1; the associated data binds it and the stored key."""
        seen: dict[str, int] = {}
        for stream, record_key, plain in rows:
            seq = seen[record_key] = seen.get(record_key, 0) + 1
            yield (seq, *self.seal(key, plain, run_id, source, stream, stored_key(record_key), seq))

    def open(self, ring: KeyRing, kid: str, nonce: bytes, ciphertext: bytes, *place: Any) -> bytes:
        """The plaintext; raises ``cryptography.exceptions.InvalidTag`` for a wrong key or a moved row, and
        ``KeyringError`` for a key id the ring does not hold (callers word the error for their table)."""
        return AESGCM(ring.key(kid).material).decrypt(bytes(nonce), bytes(ciphertext), self.aad(*place))


def stored_key(record_key: str) -> str:
    """A record key as the quarantine tables store it: scrubbed (`privacy.scrub`), so that an ID number, a
    phone or a bank card typed into a roster's 序号 never reaches the warehouse
    (``dibao:202611:[证件号]``)."""
    return scrub(record_key)


CONNECTOR = RowSeal("meta.quarantine", "islandbridge-connector-quarantine", "1")
QUALITY = RowSeal("meta.quality_quarantine", "islandbridge-quality-quarantine", "1")
SEALS = (CONNECTOR, QUALITY)


def kid_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """How many quarantined rows each key id still seals, over both tables."""
    counts: dict[str, int] = {}
    for seal in _present(con):
        for kid, n in con.execute(f"SELECT kid, count(*) FROM {seal.table} GROUP BY kid").fetchall():
            counts[kid] = counts.get(kid, 0) + n
    return counts


def rotate(con: duckdb.DuckDBPyConnection, ring: KeyRing, *, batch_size: int = 5_000) -> int:
    """Re-seal every quarantined row not under ``ring.active``; one transaction per batch. Returns the count.

    Each row is opened with the key its ``kid`` names (which the ring must still hold) and sealed again under
    the active key, with a fresh nonce and the same associated data (its key stored scrubbed first,
    `scrub_stored_keys`).
    """
    done = scrub_stored_keys(con, ring, batch_size=batch_size)
    for seal in _present(con):
        while True:
            rows = con.execute(
                f"SELECT {', '.join(PLACE)}, kid, nonce, ciphertext FROM {seal.table} WHERE kid <> ? "
                f"ORDER BY {', '.join(PLACE)} LIMIT ?",
                [ring.active.kid, batch_size],
            ).fetchall()
            if not rows:
                break
            _replace(
                con,
                seal,
                [_reseal(seal, ring, _named(r)) for r in rows],
            )
            done += len(rows)
    return done


def scrub_stored_keys(con: duckdb.DuckDBPyConnection, ring: KeyRing, *, batch_size: int = 5_000) -> int:
    """Store scrubbed the record keys (and connector reasons) that warehouses from before kept whole.

    Each such row is opened under the key it was bound to and sealed again under ``ring.active``, bound to
    its stored key (`stored_key`). Running it again finds nothing to do. Returns the rows re-sealed.
    """
    number_legacy_rows(con)
    done = 0
    for seal in _present(con):
        whole = [
            k
            for (k,) in con.execute(f"SELECT DISTINCT record_key FROM {seal.table}").fetchall()
            if k != stored_key(k)
        ]
        for start in range(0, len(whole), batch_size):
            rows = con.execute(
                f"SELECT {', '.join(PLACE)}, kid, nonce, ciphertext FROM {seal.table} "
                "WHERE list_contains(?, record_key)",
                [whole[start : start + batch_size]],
            ).fetchall()
            _replace(con, seal, [_reseal(seal, ring, _named(r)) for r in rows])
            done += len(rows)
    if CONNECTOR in _present(con):
        for (reason,) in con.execute("SELECT DISTINCT reason FROM meta.quarantine").fetchall():
            if reason != scrub(reason):
                con.execute("UPDATE meta.quarantine SET reason = ? WHERE reason = ?", [scrub(reason), reason])
    return done


def _named(row: tuple) -> dict[str, Any]:
    return dict(zip((*PLACE, "kid", "nonce", "ciphertext"), row, strict=True))


def _reseal(seal: RowSeal, ring: KeyRing, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row sealed again under the active key, with a fresh nonce, bound to its stored key."""
    place = {c: row[c] for c in PLACE}
    plain = seal.open(ring, row["kid"], row["nonce"], row["ciphertext"], *place.values())
    place["record_key"] = stored_key(row["record_key"])
    nonce, ciphertext = seal.seal(ring.active, plain, *place.values())
    return {**place, "kid": ring.active.kid, "was": row["nonce"], "nonce": nonce, "ciphertext": ciphertext}


def _replace(con, seal: RowSeal, rows: list[dict[str, Any]]) -> None:
    """Write re-sealed rows over the rows they were (found by their old nonce: places may repeat)."""
    batch = pa.Table.from_pylist(
        rows,
        pa.schema(
            [
                ("run_id", pa.string()),
                ("source", pa.string()),
                ("stream", pa.string()),
                ("record_key", pa.string()),
                ("seq", pa.int32()),
                ("kid", pa.string()),
                ("was", pa.binary()),
                ("nonce", pa.binary()),
                ("ciphertext", pa.binary()),
            ]
        ),
    )
    with registered(con, "_ib_resealed", batch), transaction(con):
        con.execute(
            f"UPDATE {seal.table} AS t SET record_key = b.record_key, kid = b.kid, nonce = b.nonce, "
            "ciphertext = b.ciphertext FROM _ib_resealed b WHERE t.nonce = b.was AND "
            + " AND ".join(f"t.{c} = b.{c}" for c in PLACE if c != "record_key")
        )


def number_legacy_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Give connector-quarantine rows sealed before ``seq`` was stored the number their seal was bound to.

    Warehouses from before ``seq`` was stored numbered a record key's rows in insertion order.
    """
    if CONNECTOR not in _present(con):
        return
    con.execute("ALTER TABLE meta.quarantine ADD COLUMN IF NOT EXISTS seq INTEGER")
    if con.execute("SELECT count(*) FROM meta.quarantine WHERE seq IS NULL").fetchall()[0][0]:
        con.execute("""
            UPDATE meta.quarantine SET seq = n.seq FROM (
                SELECT rowid AS r, row_number() OVER (PARTITION BY run_id, source, stream, record_key
                                                      ORDER BY rowid) AS seq FROM meta.quarantine) n
            WHERE meta.quarantine.rowid = n.r AND meta.quarantine.seq IS NULL""")


def _present(con) -> list[RowSeal]:
    have = {
        f"{s}.{t}"
        for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name = 'meta'"
        ).fetchall()
    }
    return [seal for seal in SEALS if seal.table in have]
