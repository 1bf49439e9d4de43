"""The quality quarantine: rows that failed a row-level check, encrypted, listed, shown masked, replayed.

``meta.quality_quarantine`` holds one row per landed row set aside by the gate: run, source, stream,
record key (scrubbed, `rowseal.stored_key`: a 序号 may hold an ID number; the whole key is in the sealed
row), ``seq`` (its copy number, when a key was landed twice), the checks it failed, and the raw
row as JSON sealed with AES-256-GCM under the ``quarantine`` keyring (``keys.quarantine`` in the
configuration; purpose kept apart from the vault's) by `rowseal.QUALITY`: the associated data binds each
ciphertext to its run, source, stream, record key and seq, so a ciphertext moved to another row fails
to open. ``islandbridge keys rotate --purpose quarantine`` re-seals it under a new key.

``meta.quality_results`` holds the compact validation summary of each run that passed the gate
(numbers and names only). A run stopped by the gate is recorded only in its report files, so the
warehouse stays byte-for-byte as it was.

The CLI's ``islandbridge quarantine list|show|replay`` call ``list_quarantined``, ``show`` and ``replay``.
``list_quarantined`` lists the connectors' rows too (``meta.quarantine``, records a connector could not
read: record key and the connector's reason); ``show`` and ``replay`` are for the gate's rows. Every record
key is stored and shown scrubbed (`shown_key`): a roster's 序号 may hold an ID number or a phone; gate rows
whose keys scrub alike are listed with a suffix that tells them apart (`_listed_keys`), which ``show`` takes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from cryptography.exceptions import InvalidTag

from islandbridge.config import Settings
from islandbridge.landing.zone import RECORD_KEY
from islandbridge.privacy.configured import quarantine_keyring
from islandbridge.privacy.keys import KeyRing, new_keyring_text
from islandbridge.privacy.masking import mask_id, mask_name, mask_phone, mask_typed
from islandbridge.privacy.rowseal import QUALITY, stored_key
from islandbridge.privacy.scrub import scrub
from islandbridge.quality.errors import QualityConfigError, QuarantineError
from islandbridge.schemas import Check, TableSchema
from islandbridge.storage import transaction

PURPOSE = "quarantine"

DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.quality_results (
    run_id VARCHAR, source VARCHAR, stream VARCHAR, expectation VARCHAR, kind VARCHAR, gx_type VARCHAR,
    column_name VARCHAR, severity VARCHAR, success BOOLEAN, element_count BIGINT, unexpected_count BIGINT,
    observed_json VARCHAR, engine VARCHAR, validated_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS meta.quality_quarantine (
    run_id VARCHAR, source VARCHAR, stream VARCHAR, record_key VARCHAR, seq INTEGER,
    expectations_failed VARCHAR[], kid VARCHAR, nonce BLOB, ciphertext BLOB,
    quarantined_at TIMESTAMPTZ, replayed_at TIMESTAMPTZ
);
"""
SEALED_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("source", pa.string()),
        ("stream", pa.string()),
        ("record_key", pa.string()),
        ("seq", pa.int32()),
        ("expectations_failed", pa.list_(pa.string())),
        ("kid", pa.string()),
        ("nonce", pa.binary()),
        ("ciphertext", pa.binary()),
    ]
)


def keyring(settings: Settings, key_name: str = PURPOSE) -> KeyRing:
    """The quarantine keyring from ``settings.keys[key_name]``; ``QualityConfigError`` says how to add it."""
    return quarantine_keyring(settings, key_name, QualityConfigError)


def ephemeral_keyring(kid: str = "q-test") -> KeyRing:
    """A fresh in-memory keyring, for tests and benchmarks only."""
    return KeyRing.parse(new_keyring_text(kid=kid), PURPOSE)


def seal(
    ring: KeyRing, run_id: str, source: str, stream: str, failing: pa.Table, columns: Sequence[str]
) -> pa.Table:
    """Encrypt each failing row (its raw columns and record key, as JSON) under the active key."""
    key, rows = ring.active, failing.to_pylist()
    plains = [
        (
            stream,
            row[RECORD_KEY],
            json.dumps(
                {c: row.get(c) for c in (*columns, RECORD_KEY)}, ensure_ascii=False, sort_keys=True
            ).encode("utf-8"),
        )
        for row in rows
    ]
    sealed = QUALITY.seal_rows(key, run_id, source, plains)
    out = [
        {
            "run_id": run_id,
            "source": source,
            "stream": stream,
            "record_key": stored_key(row[RECORD_KEY]),
            "seq": seq,
            "expectations_failed": list(row["expectations_failed"]),
            "kid": key.kid,
            "nonce": nonce,
            "ciphertext": ciphertext,
        }
        for row, (seq, nonce, ciphertext) in zip(rows, sealed, strict=True)
    ]
    return pa.Table.from_pylist(out, SEALED_SCHEMA)


def unseal(ring: KeyRing, row: Mapping[str, Any]) -> dict[str, Any]:
    """The raw row of one quarantine entry; ``QuarantineError`` if it fails authentication."""
    try:
        plain = QUALITY.open(
            ring,
            row["kid"],
            row["nonce"],
            row["ciphertext"],
            *(row[c] for c in ("run_id", "source", "stream", "record_key", "seq")),
        )
    except InvalidTag:
        raise QuarantineError(
            f"quarantined row {row['run_id']}/{row['source']}/{row['stream']}/{shown_key(row['record_key'])} failed "
            f"authentication under key id {row['kid']!r}: wrong key for that id, or the row was altered"
        ) from None
    return json.loads(plain)


def record(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    sources: Sequence[str],
    results: pa.Table,
    sealed: Sequence[pa.Table],
    at: dt.datetime,
) -> None:
    """Replace the run's quality results and quarantine for ``sources`` in one transaction."""
    con.execute(DDL)
    try:
        with transaction(con):
            for table in ("quality_results", "quality_quarantine"):
                con.execute(
                    f"DELETE FROM meta.{table} WHERE run_id = ? AND list_contains(?, source)",
                    [run_id, list(sources)],
                )
            con.register("_results", results)
            con.execute("INSERT INTO meta.quality_results SELECT *, ? FROM _results", [at])
            for n, table in enumerate(sealed):
                con.register(f"_sealed{n}", table)
                con.execute(f"INSERT INTO meta.quality_quarantine SELECT *, ?, NULL FROM _sealed{n}", [at])
    finally:
        for name in ["_results", *(f"_sealed{n}" for n in range(len(sealed)))]:
            con.unregister(name)


# --------------------------------------------------------------------------- list and show


GATE, CONNECTOR = "quality gate", "connector"  # the stage that set a row aside
_SUFFIX, MIN_SUFFIX = "~", 4  # a listed key's suffix telling apart rows that scrub alike (`_listed_keys`)


@dataclass(frozen=True)
class Entry:
    run_id: str
    source: str
    stream: str
    record_key: str
    seq: int
    expectations_failed: tuple[str, ...]
    quarantined_at: dt.datetime | None
    replayed_at: dt.datetime | None
    stage: str = GATE
    reason: str | None = None  # a connector's reason, scrubbed (phones, ID numbers, bank cards)


def shown_key(record_key: str) -> str:
    """A record key as an operator sees it: scrubbed (`privacy.scrub`). A roster is keyed by its 序号, into
    which a clerk may have typed an ID number or a phone; ``dibao:202611:[证件号]`` names the row without
    it, and `show` takes the key in this form (with `list_quarantined`'s suffix, when several rows scrub
    alike) as well as whole."""
    return scrub(record_key)


def _listed_keys(rows: Sequence[tuple[tuple, int, str, bytes]]) -> list[str]:
    """Each gate row's key as `list_quarantined` shows it: scrubbed (`shown_key`), and where two rows of a
    stream (and seq) scrub alike, followed by ``~`` and the first hex digits of the row's nonce, as many as
    tell them apart (``dibao:202611:[证件号]~3f9a``). The nonce is random per sealing, so the suffix says
    nothing about the key; it changes when ``keys rotate --purpose quarantine`` re-seals the row.

    ``rows``: (run, source, stream), seq, record key, nonce — one tuple per row."""
    shown = [(where, seq, shown_key(key)) for where, seq, key, _ in rows]
    groups: dict[tuple, list[bytes]] = {}
    for name, (*_, nonce) in zip(shown, rows, strict=True):
        groups.setdefault(name, []).append(nonce)
    return [
        name[2] + (f"{_SUFFIX}{nonce.hex()[: _digits(groups[name])]}" if len(groups[name]) > 1 else "")
        for name, (*_, nonce) in zip(shown, rows, strict=True)
    ]


def _digits(nonces: Sequence[bytes]) -> int:
    """The fewest hex digits (at least 4) of the nonces that tell them all apart."""
    hexes = [n.hex() for n in nonces]
    return next(
        (n for n in range(MIN_SUFFIX, len(hexes[0]), 2) if len({h[:n] for h in hexes}) == len(hexes)),
        len(hexes[0]),
    )


def list_quarantined(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str | None = None,
    source: str | None = None,
    stream: str | None = None,
    include_replayed: bool = False,
) -> list[Entry]:
    """Quarantined rows, newest run first, each with the stage that set it aside: the quality gate's
    (keys and failed checks) and the connectors' (keys and reason). Never the row."""
    query = {"run": run_id, "src": source, "stream": stream}
    where = (
        "($run IS NULL OR run_id = $run) AND ($src IS NULL OR source = $src) "
        "AND ($stream IS NULL OR stream = $stream)"
    )
    entries = []
    if _has_quarantine(con):
        rows = con.execute(
            "SELECT run_id, source, stream, record_key, seq, expectations_failed, quarantined_at, replayed_at, "
            f"nonce FROM meta.quality_quarantine WHERE {where}",
            query,
        ).fetchall()
        # keys are told apart among all rows, replayed ones too, as `show` finds them
        listed = _listed_keys([(r[:3], r[4], r[3], r[8]) for r in rows])
        entries += [
            Entry(*r[:3], key, r[4], tuple(r[5]), r[6], r[7])
            for r, key in zip(rows, listed, strict=True)
            if include_replayed or r[7] is None
        ]
    if _has_quarantine(con, "quarantine"):
        rows = con.execute(
            "SELECT run_id, source, stream, record_key, coalesce(seq, 1), reason FROM meta.quarantine "
            f"WHERE {where}",
            query,
        ).fetchall()
        entries += [
            Entry(*r[:3], shown_key(r[3]), r[4], (), None, None, CONNECTOR, scrub(r[5])) for r in rows
        ]
    entries.sort(key=lambda e: (e.source, e.stream, e.stage != GATE, e.record_key, e.seq))
    entries.sort(key=lambda e: e.run_id, reverse=True)
    return entries


def show(
    con: duckdb.DuckDBPyConnection,
    ring: KeyRing,
    table: TableSchema,
    run_id: str,
    source: str,
    record_key: str,
    seq: int = 1,
) -> dict[str, Any]:
    """One quarantined row: the checks it failed (and the ``reasons`` their definitions give), the columns
    they read, and those columns' values —
    direct identifiers masked (``transforms.masking``), quasi-identifiers and plain values as landed but
    scrubbed (`display_value`).
    ``record_key``: the key whole, or as `list_quarantined` shows it (`shown_key`); it is shown scrubbed.

    Raises ``QuarantineError`` when there is no such row or it cannot be decrypted.
    """
    row = _fetch(con, ring, run_id, source, table.stream, record_key, seq)
    values = unseal(ring, row)
    failed = list(row["expectations_failed"])
    checks = [check for check in (_check(table, c) for c in failed) if check is not None]
    columns = list(dict.fromkeys(c for check in checks for c in check.columns))
    return {
        "run_id": run_id,
        "source": source,
        "stream": table.stream,
        "record_key": shown_key(row["record_key"]),
        "seq": seq,
        "expectations_failed": failed,
        "reasons": {check.id: check.reason for check in checks if check.reason},
        "failed_columns": columns,
        "values": {c: display_value(table, c, values.get(c)) for c in columns},
        "replayed_at": row["replayed_at"],
    }


def display_value(table: TableSchema, column: str, value: Any) -> Any:
    """A value as an operator may see it: direct identifiers masked, never shown whole; other text
    scrubbed, as the keys are (a 序号 may hold an ID number or a phone)."""
    col = table.column(column)
    if col is None or col.pii != "direct":
        return scrub(value) if isinstance(value, str) else value
    masks = {"name": mask_name, "phone": mask_phone, "id": mask_id}
    return masks[col.mask](value) if col.mask in masks else (None if value is None else "***")


def _check(table: TableSchema, check_id: str) -> Check | None:
    """The check a quarantined row failed, or None when the table's suite no longer has it."""
    try:
        return table.check(check_id)
    except KeyError:
        return None


def _fetch(
    con, ring: KeyRing, run_id: str, source: str, stream: str, record_key: str, seq: int
) -> dict[str, Any]:
    """The row ``record_key`` names: as `list_quarantined` lists it (scrubbed, with its suffix when several
    rows scrub alike), or whole, which is told apart from keys that scrub alike by the key sealed in each."""
    if not _has_quarantine(con):
        raise QuarantineError("this warehouse has no quality quarantine yet")
    where, ids = "run_id = ? AND source = ? AND stream = ? AND seq = ?", [run_id, source, stream, seq]
    # a warehouse not yet migrated (`rowseal.scrub_stored_keys`) may still store the key whole
    stored = {record_key, stored_key(record_key), stored_key(record_key.rpartition(_SUFFIX)[0])}
    rows = _rows(con, f"{where} AND list_contains(?, record_key)", [*ids, sorted(stored)])
    listed = _listed_keys([((), seq, r["record_key"], r["nonce"]) for r in rows])
    found = [r for r, shown in zip(rows, listed, strict=True) if record_key in (shown, r["record_key"])]
    if len(found) != 1 and record_key != stored_key(record_key):
        found = [r for r in rows if unseal(ring, r).get(RECORD_KEY) == record_key]
    if len(found) == 1:
        return found[0]
    row = mask_typed(f"{run_id}/{source}/{stream}/{shown_key(record_key)}")
    if found:
        raise QuarantineError(
            f"{len(found)} quarantined rows are listed as {row} (seq {seq}): their keys hold an identifier, "
            f"shown scrubbed; name one as `islandbridge quarantine list` lists it, with its {_SUFFIX}suffix"
        )
    if _set_aside_by_connector(con, run_id, source, stream, record_key):
        raise QuarantineError(
            f"{row} was set aside by the connector, which could not read it as a row: `show` and "
            "`replay` are for the quality gate's rows; its reason is in `islandbridge quarantine list`"
        )
    raise QuarantineError(f"no quarantined row {row} (seq {seq}); see `islandbridge quarantine list`")


def _rows(con, where: str, params: list) -> list[dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM meta.quality_quarantine WHERE {where}", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _set_aside_by_connector(con, run_id: str, source: str, stream: str, record_key: str) -> bool:
    if not _has_quarantine(con, "quarantine"):
        return False
    keys = con.execute(
        "SELECT record_key FROM meta.quarantine WHERE run_id = ? AND source = ? AND stream = ? "
        "AND list_contains(?, record_key)",
        [run_id, source, stream, [record_key, stored_key(record_key)]],
    ).fetchall()
    return bool(keys)


def _has_quarantine(con, table: str = "quality_quarantine") -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = ?", [table]
        ).fetchall()[0][0]
    )
