"""Pseudonymise at load: what of a landed row reaches the warehouse, and what is sealed in the vault.

The schema of each raw table (``schemas/raw_*.yml``) classes every column. At load, for each row:

- ``pii: direct`` columns (names, ID numbers, phones, bank cards, addresses, free text) are removed from
  the ``raw`` table and sealed together, as one AES-256-GCM ciphertext per row, in the vault's
  ``records`` table, bound to (source, stream, run_id, record_key);
- a direct column marked ``scrub: true`` (incident titles and descriptions, visit findings) is kept in
  the warehouse only as scrubbed text: ID numbers, bank cards, phones and the names of the street's known
  persons replaced by ``[证件号]``, ``[银行卡]``, ``[电话]``, ``[姓名]``;
- every ID-number column (``role: id_number``) gains ``<column>__kind`` (`normalize_id`'s kind: full, masked,
  excel_damaged, …), so that a report can say *why* a roster row matched nobody without the number, and
  ``<column>__birth_date``, the birth date a valid number states (a derived, quasi attribute);
- a stream with no schema is treated as all-direct: only its record key reaches the warehouse.

Connector quarantine rows are sealed under the ``quarantine`` keyring, as the quality gate's are
(`islandbridge.privacy.rowseal`).

Identity matching reads the sealed columns back through `SealedColumns`, in memory, for one run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
from cryptography.exceptions import InvalidTag

from islandbridge.errors import TerminalError
from islandbridge.privacy.keys import KeyRing
from islandbridge.privacy.rowseal import CONNECTOR, stored_key
from islandbridge.privacy.scrub import Scrubber, scrub
from islandbridge.privacy.vault import Vault
from islandbridge.schemas import RECORD_KEY, TableSchema, load_tables
from islandbridge.transforms.normalize.ids import normalize_id

KNOWN_NAMES = "known_names"  # the vault's sealed list of every person name seen, for the scrubber
KIND_SUFFIX = "__kind"
BIRTH_SUFFIX = "__birth_date"  # the birth date an ID number states (quasi, like the registry's own csrq)


class SealedQuarantineError(TerminalError):
    """A sealed connector-quarantine row failed authentication (wrong key for its kid, or altered).

    Terminal: the configured key or the stored row is wrong; a person must restore the right one."""


@dataclass(frozen=True)
class StreamPrivacy:
    """How one landed stream is split between the warehouse and the vault."""

    sealed: tuple[str, ...]  # removed from the raw table, sealed per row in the vault
    scrubbed: tuple[str, ...]  # also kept in the raw table, scrubbed (a subset of ``sealed``)
    id_columns: tuple[str, ...]  # each gains ``<column>__kind``
    name_columns: tuple[str, ...]  # person names, fed to the scrubber's list of known names
    spreadsheet: bool = False  # typed in Excel: an 18-digit ID ending in 000 is damage (normalize_id)

    def warehouse_columns(self, columns: Sequence[str]) -> list[str]:
        """The raw table's columns: the landed ones minus sealed (plus scrubbed), then the ID kinds."""
        kept = [c for c in columns if c not in self.sealed or c in self.scrubbed]
        ids = [c for c in self.id_columns if c in columns]
        return kept + [c + KIND_SUFFIX for c in ids] + [c + BIRTH_SUFFIX for c in ids]

    @property
    def needs_rewrite(self) -> bool:
        return bool(self.sealed or self.id_columns)


def stream_privacy(
    kind: str,
    stream: str,
    columns: Sequence[str],
    tables: Mapping[tuple[str, str], TableSchema] | None = None,
) -> StreamPrivacy:
    """The split for connector ``kind``'s ``stream``; columns the schema does not declare count as direct."""
    schema = (tables if tables is not None else load_tables()).get((kind, stream))
    cols = [c for c in columns if c != RECORD_KEY]
    if schema is None:
        return StreamPrivacy(tuple(cols), (), (), ())
    sealed = tuple(c for c in cols if schema.pii(c) == "direct")
    declared = {c.name: c for c in schema.columns}
    return StreamPrivacy(
        sealed=sealed,
        scrubbed=tuple(c for c in sealed if c in declared and declared[c].scrub),
        id_columns=tuple(c for c in cols if c in declared and declared[c].role == "id_number"),
        name_columns=tuple(c for c in cols if c in declared and declared[c].role == "name"),
        spreadsheet=schema.spreadsheet,
    )


@dataclass
class LoadPrivacy:
    """Everything the loader needs to pseudonymise: the open vault, the quarantine keyring, each source's
    connector kind, and the scrubber built from the street's known names."""

    vault: Vault
    quarantine: KeyRing
    kinds: Mapping[str, str]  # source name -> connector kind
    scrubber: Scrubber


def sealed_rows(batches: Iterable[pa.RecordBatch], spec: StreamPrivacy) -> Iterator[tuple[str, dict]]:
    """``(record_key, {sealed column: value})`` of each landed row, for `Vault.seal_records`."""
    for batch in batches:
        keys = batch.column(RECORD_KEY).to_pylist()
        cols = {c: batch.column(c).to_pylist() for c in spec.sealed if c in batch.schema.names}
        for i, key in enumerate(keys):
            yield key, {c: values[i] for c, values in cols.items()}


def warehouse_batch(
    batch: pa.RecordBatch, spec: StreamPrivacy, columns: Sequence[str], scrubber: Scrubber
) -> pa.Table:
    """The part of a landed batch that the warehouse may hold (see the module docstring)."""
    out = {}
    parsed: dict[str, list] = {}

    def ids(column: str) -> list:  # each ID column parsed once per batch, for its kind and its birth date
        if column not in parsed:
            values = batch.column(column).to_pylist()
            parsed[column] = [normalize_id(v, spreadsheet=spec.spreadsheet) for v in values]
        return parsed[column]

    for c in spec.warehouse_columns(columns):
        if c.endswith(KIND_SUFFIX) and c[: -len(KIND_SUFFIX)] in spec.id_columns:
            out[c] = pa.array([n.kind for n in ids(c[: -len(KIND_SUFFIX)])], pa.string())
        elif c.endswith(BIRTH_SUFFIX) and c[: -len(BIRTH_SUFFIX)] in spec.id_columns:
            out[c] = pa.array(
                [n.birth_date.isoformat() if n.birth_date else None for n in ids(c[: -len(BIRTH_SUFFIX)])],
                pa.string(),
            )
        elif c in spec.scrubbed:
            out[c] = pa.array([scrubber(v) for v in batch.column(c).to_pylist()], pa.string())
        else:
            out[c] = batch.column(c)
    out[RECORD_KEY] = batch.column(RECORD_KEY)
    return pa.table(out)


def landed_names(batches: Iterable[pa.RecordBatch], spec: StreamPrivacy) -> set[str]:
    names: set[str] = set()
    for batch in batches:
        for c in spec.name_columns:
            if c in batch.schema.names:
                names.update(
                    v.strip() for v in batch.column(c).to_pylist() if isinstance(v, str) and v.strip()
                )
    return names


# -- connector quarantine ----------------------------------------------------------------------------------

QUARANTINE_SEALED = pa.schema(
    [
        ("stream", pa.string()),
        (RECORD_KEY, pa.string()),
        ("reason", pa.string()),
        ("seq", pa.int32()),
        ("kid", pa.string()),
        ("nonce", pa.binary()),
        ("ciphertext", pa.binary()),
    ]
)


def seal_quarantine(ring: KeyRing, run_id: str, source: str, table: pa.Table) -> pa.Table:
    """Seal the ``record_json`` of a source's landed quarantine rows; the reason stays readable.

    Rows are numbered per record key in landing order (``seq``, 1-based), which the associated data binds
    (`rowseal.CONNECTOR`); the key and the reason (which may quote a 序号) are stored scrubbed.
    """
    key, rows = ring.active, table.to_pylist()
    plains = [(row["stream"], row[RECORD_KEY], (row["record_json"] or "").encode("utf-8")) for row in rows]
    sealed = CONNECTOR.seal_rows(key, run_id, source, plains)
    out = [
        {
            "stream": row["stream"],
            RECORD_KEY: stored_key(row[RECORD_KEY]),
            "reason": scrub(row["reason"]),
            "seq": seq,
            "kid": key.kid,
            "nonce": nonce,
            "ciphertext": ciphertext,
        }
        for row, (seq, nonce, ciphertext) in zip(rows, sealed, strict=True)
    ]
    return pa.Table.from_pylist(out, QUARANTINE_SEALED)


def unseal_quarantine(
    ring: KeyRing,
    run_id: str,
    source: str,
    stream: str,
    record_key: str,
    seq: int,
    kid: str,
    nonce: bytes,
    ciphertext: bytes,
) -> dict:
    """The raw record of one sealed connector-quarantine row."""
    try:
        plain = CONNECTOR.open(ring, kid, nonce, ciphertext, run_id, source, stream, record_key, seq)
    except InvalidTag:
        raise SealedQuarantineError(
            f"quarantined record {run_id}/{source}/{stream}/{record_key} failed authentication under key id "
            f"{kid!r}: wrong key for that id, or the row was altered"
        ) from None
    return json.loads(plain) if plain else {}


# -- reading sealed columns back (identity matching) -------------------------------------------------------


class SealedColumns:
    """Fills a raw query's missing direct columns from the vault, for in-memory use only.

    Example::

        sealed = SealedColumns(vault)
        table = sealed.fill(table, source="registry", stream="t_jm", columns=["xm", "sfzh"])
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def fill(
        self,
        table: pa.Table,
        *,
        source: str,
        stream: str,
        columns: Sequence[str],
        key_column: str = "record_key",
        run_column: str = "last_seen_run",
    ) -> pa.Table:
        if not columns or not table.num_rows:
            for c in columns:
                if c not in table.column_names:
                    table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
            return table
        wanted = list(zip(table[key_column].to_pylist(), table[run_column].to_pylist(), strict=True))
        values = self.vault.open_records(source, stream, wanted)
        for c in columns:
            column = pa.array([(v or {}).get(c) for v in values], pa.string())
            if c in table.column_names:
                table = table.set_column(table.column_names.index(c), c, column)
            else:
                table = table.append_column(c, column)
        return table
