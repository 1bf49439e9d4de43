"""The identifier vault: direct identifiers, encrypted, in their own DuckDB file beside the warehouse.

The analyst warehouse holds pseudonyms only. Names, ID numbers, phones, bank cards and person-level
addresses live here, one row per (person_key, field, source system, source record), each value sealed
with AES-256-GCM under the vault keyring's active key:

- a fresh random 96-bit nonce per value (never reused: a new encryption draws a new nonce);
- associated data binding the ciphertext to its row (person_key, field, system, record_key), so a
  ciphertext copied to another person or field fails authentication instead of decrypting;
- the key id (kid) stored with each row, so any key of the ring can decrypt and rotation can proceed
  batch by batch while everything stays readable.

Plaintexts never enter DuckDB, a log or an error message.

Example::

    with Vault.open("var/vault.duckdb", keys.vault) as vault:
        vault.put_many([(pk, "phone", "registry", "jm:1001", "13800138000")])
        vault.get([pk], ["phone"])[pk]["phone"][0].value      # '13800138000'
        vault.rotate(new_ring)                               # RotationResult(reencrypted=1, ...)
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from islandbridge import storage
from islandbridge.config import DuckDBResources
from islandbridge.errors import TerminalError, count, noun
from islandbridge.privacy import vault_filings
from islandbridge.privacy.keys import VAULT, KeyRing
from islandbridge.privacy.vault_columns import associated_data, digest, digest_key, seal_column, string_table
from islandbridge.storage import owner_only, registered, transaction

log = logging.getLogger(__name__)

FIELDS = ("name", "id_number", "phone", "bank_card", "address", "birth_date")
FORMAT = "1"
NONCE_BYTES = 12
#: Rows per committed chunk of `Vault.put_table`: fewer, larger chunks mean fewer key scans and commits.
PUT_CHUNK_ROWS = 100_000

_DDL = """
CREATE TABLE IF NOT EXISTS identifiers (
    person_key VARCHAR NOT NULL, field VARCHAR NOT NULL, system VARCHAR NOT NULL,
    record_key VARCHAR NOT NULL, kid VARCHAR NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
    PRIMARY KEY (person_key, field, system, record_key)
);
CREATE TABLE IF NOT EXISTS records (
    source VARCHAR NOT NULL, stream VARCHAR NOT NULL, run_id VARCHAR NOT NULL, record_key VARCHAR NOT NULL,
    kid VARCHAR NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
    PRIMARY KEY (source, stream, run_id, record_key)
);
CREATE TABLE IF NOT EXISTS sealed_lists (
    name VARCHAR PRIMARY KEY, kid VARCHAR NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS vault_meta (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
INSERT OR IGNORE INTO vault_meta VALUES ('format', '1');
ALTER TABLE records ADD COLUMN IF NOT EXISTS digest BLOB;
CREATE TABLE IF NOT EXISTS filings (
    system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, person_key VARCHAR NOT NULL, digest BLOB,
    raw_digest BLOB, PRIMARY KEY (system, record_key)
);
"""
_KEY_COLUMNS = ("person_key", "field", "system", "record_key")
_RECORD_KEY_COLUMNS = ("source", "stream", "run_id", "record_key")
# What `rotate` re-encrypts: table, its key columns, and the associated-data label of its values.
_SEALED_TABLES = (
    ("identifiers", _KEY_COLUMNS, "islandbridge-vault"),
    ("records", _RECORD_KEY_COLUMNS, "islandbridge-vault-record"),
    ("sealed_lists", ("name",), "islandbridge-vault-list"),
)
Row = tuple[str, str, str, str, str | None]  # person_key, field, system, record_key, plaintext


class VaultError(TerminalError):
    """The vault cannot do what was asked (unknown field, wrong keyring).

    Terminal, like ``VaultIntegrityError`` (a stored value fails authentication): the request, the
    keyring or the stored data must be fixed by a person."""


class VaultIntegrityError(VaultError):
    """A stored value failed authentication: the key for its kid is wrong, or the row was altered."""


@dataclass(frozen=True)
class VaultValue:
    """One decrypted identifier and where it came from."""

    system: str
    record_key: str
    value: str
    kid: str


@dataclass(frozen=True)
class PutResult:
    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0
    skipped: int = 0  # rows whose plaintext was None

    def __add__(self, other: PutResult) -> PutResult:
        return PutResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class RotationProgress:
    """Passed to ``rotate``'s ``on_batch`` hook after each committed batch."""

    batches: int
    reencrypted: int
    remaining: int


@dataclass(frozen=True)
class RotationResult:
    active_kid: str
    reencrypted: int
    already_current: int
    batches: int


class Vault:
    """An open vault file. Use ``Vault.open``; close it (or use ``with``) when done."""

    def __init__(self, con: duckdb.DuckDBPyConnection, keyring: KeyRing, path: Path) -> None:
        self._con, self.path = con, path
        self._use(keyring)

    @classmethod
    def open(
        cls,
        path: str | Path,
        keyring: KeyRing,
        *,
        wait_s: float = 60.0,
        resources: DuckDBResources | None = None,
    ) -> Vault:
        """Open or create the vault at ``path``, made owner-only (0600, its WAL too) if it was not.

        One process holds the vault file at a time; another step holding it (a key rotation between its
        batches, say) is waited for up to ``wait_s`` seconds.

        Raises ``VaultError`` for a keyring of another purpose or a file that does not open. Keys are
        checked lazily: a row whose kid the ring lacks raises ``UnknownKeyIdError`` when it is read.
        """
        if keyring.purpose != VAULT:
            raise VaultError(f"the vault needs the {VAULT!r} keyring, got {keyring!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        con = _connect_waiting(path, wait_s, resources)
        for part in (path, path.with_name(path.name + ".wal")):  # created so under the command's umask
            owner_only(part, 0o600)
        con.execute(_DDL)
        return cls(con, keyring, path)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def keyring(self) -> KeyRing:
        return self._ring

    def put_many(self, rows: Iterable[Row], *, chunk_rows: int = PUT_CHUNK_ROWS) -> PutResult:
        """Upsert identifiers: new rows are inserted, a changed plaintext replaces the stored one, an
        unchanged plaintext leaves its row untouched (no re-encryption, no churn). A ``None`` plaintext
        is skipped; of two rows with one key the last counts. Raises ``VaultError`` for an unknown field.
        """
        latest: dict[tuple[str, str, str, str], str] = {}
        skipped = 0
        for person_key, field_, system, record_key, plaintext in rows:
            if plaintext is None:
                skipped += 1
            else:
                latest[(str(person_key), field_, str(system), str(record_key))] = str(plaintext)
        table = string_table([(*key, value) for key, value in latest.items()], (*_KEY_COLUMNS, "value"))
        return self.put_table(table, chunk_rows=chunk_rows) + PutResult(skipped=skipped)

    def put_table(self, rows: pa.Table, *, chunk_rows: int = PUT_CHUNK_ROWS) -> PutResult:
        """`put_many` for an Arrow table of ``person_key, field, system, record_key, value`` (strings, one
        row per key, no null value): sealed a column at a time (`vault_columns`), one statement per chunk,
        each chunk committed on its own. Raises ``VaultError`` for an unknown field."""
        _check_fields(pc.unique(rows["field"]).to_pylist() if rows.num_rows else [])
        totals = PutResult()
        for start in range(0, rows.num_rows, chunk_rows):
            totals += self._put_chunk(rows.slice(start, chunk_rows).combine_chunks())
        log.debug(
            "vault put: %d inserted, %d replaced, %d unchanged, %d skipped",
            totals.inserted,
            totals.replaced,
            totals.unchanged,
            totals.skipped,
        )
        return totals

    def get(self, person_keys: Iterable[str], fields: Sequence[str] = FIELDS) -> dict[str, dict[str, tuple]]:
        """Decrypt the requested fields: ``{person_key: {field: (VaultValue, ...)}}``.

        A person or field without values is absent. Several values for one field (one per source
        record) come sorted by system and record key; choosing among them is the caller's rule.
        Raises ``UnknownKeyIdError`` / ``VaultIntegrityError`` naming the kid when a value cannot be
        decrypted — never a partial or garbled value.
        """
        fields = [fields] if isinstance(fields, str) else list(fields)
        _check_fields(fields)
        keys = pa.table({"person_key": pa.array(sorted(set(person_keys)), pa.string())})
        with registered(self._con, "wanted_keys", keys):
            rows = self._con.execute(
                "SELECT i.* FROM identifiers i JOIN wanted_keys USING (person_key) "
                "WHERE list_contains(?, field) ORDER BY person_key, field, system, record_key",
                [fields],
            ).fetchall()
        out: dict[str, dict[str, tuple]] = {}
        for row in rows:
            value = VaultValue(row[2], row[3], self._open(row), row[4])
            person = out.setdefault(row[0], {})
            person[row[1]] = (*person.get(row[1], ()), value)
        return out

    def kid_counts(self) -> dict[str, int]:
        """How many values each key id seals; an old key may be dropped once its count is zero."""
        union = " UNION ALL ".join(f"SELECT kid FROM {table}" for table, _, _ in _SEALED_TABLES)
        return dict(
            self._con.execute(f"SELECT kid, count(*) FROM ({union}) GROUP BY kid ORDER BY kid").fetchall()
        )

    def rotate(
        self,
        new_keyring: KeyRing,
        *,
        batch_size: int = 5_000,
        on_batch: Callable[[RotationProgress], None] | None = None,
        max_batches: int | None = None,
    ) -> RotationResult:
        """Re-encrypt every value not under ``new_keyring``'s active key, ``batch_size`` rows per
        transaction. Between batches the vault reads with the old and new keys together, so it stays
        readable throughout; ``on_batch`` is called after each commit. Person keys do not change.
        Interrupted, it can be run again and continues. Afterwards the vault uses ``new_keyring`` alone,
        and an old key can be removed from the configuration once ``kid_counts`` no longer lists it.

        ``max_batches`` stops after that many batches (call again to continue), so that a caller can
        release the vault file between rounds. Raises ``UnknownKeyIdError`` before changing anything if a
        stored kid is in neither ring.
        """
        if batch_size < 1:
            raise VaultError(f"batch_size must be at least 1, got {batch_size}")
        merged = self._ring.merged(new_keyring)
        active = merged.active
        for kid in self.kid_counts():
            merged.key(kid)
        self._use(merged)
        already = sum(
            self._con.execute(f"SELECT count(*) FROM {table} WHERE kid = ?", [active.kid]).fetchone()[0]
            for table, _, _ in _SEALED_TABLES
        )
        done = batches = 0
        for table, key_columns, label in _SEALED_TABLES:
            order = ", ".join(key_columns)
            while max_batches is None or batches < max_batches:
                with transaction(self._con):
                    rows = self._con.execute(
                        f"SELECT {order}, kid, nonce, ciphertext FROM {table} WHERE kid <> ? ORDER BY {order} "
                        "LIMIT ?",
                        [active.kid, batch_size],
                    ).fetchall()
                    if not rows:
                        break
                    width = len(key_columns)
                    resealed = [
                        self._seal_as(label, r[:width], self._open_as(label, table, r, width)) for r in rows
                    ]
                    self._write_to(table, key_columns, resealed)
                done, batches = done + len(rows), batches + 1
                if on_batch:
                    remaining = sum(
                        self._con.execute(
                            f"SELECT count(*) FROM {t} WHERE kid <> ?", [active.kid]
                        ).fetchone()[0]
                        for t, _, _ in _SEALED_TABLES
                    )
                    on_batch(RotationProgress(batches, done, remaining))
        self._use(new_keyring)
        log.info(
            "vault rotation to key id %r: %d re-encrypted in %s, %d already current",
            active.kid,
            done,
            count(batches, "batch", "batches"),
            already,
        )
        return RotationResult(active.kid, done, already, batches)

    # -- source records: the direct-identifier columns of raw rows, sealed at load ---------------------

    def seal_records(
        self,
        source: str,
        stream: str,
        run_id: str,
        rows: Iterable[tuple[str, Mapping[str, str | None]]],
        *,
        replace_slice: bool = True,
    ) -> int:
        """Replace the sealed identifier columns of one run's slice of a stream (idempotent re-load).

        ``rows`` are ``(record_key, {column: value})``; each row becomes one AES-256-GCM ciphertext
        bound to (source, stream, run_id, record_key). ``replace_slice=False`` adds to (or replaces
        single records of) the slice instead, for rows loaded later into their run (quarantine replay).
        Returns the number of rows sealed.
        """
        sealed, digests, keyed = [], [], digest_key(self._ring.active.material)
        for record_key, values in rows:
            key = (source, stream, run_id, str(record_key))
            plain = json.dumps(dict(values), ensure_ascii=False, sort_keys=True)
            sealed.append(self._seal_as(_RECORD_LABEL, key, plain))
            digests.append(digest(keyed, plain.encode("utf-8")))
        with transaction(self._con):
            if replace_slice:
                self._con.execute(
                    "DELETE FROM records WHERE source = ? AND stream = ? AND run_id = ?",
                    [source, stream, run_id],
                )
            self._write_to("records", _RECORD_KEY_COLUMNS, sealed, digests)
        return len(sealed)

    def open_records(
        self, source: str, stream: str, wanted: Sequence[tuple[str, str]]
    ) -> list[dict[str, str | None] | None]:
        """The sealed columns of ``(record_key, run_id)`` pairs, in order; None where nothing was sealed."""
        if not wanted:
            return []
        keys = pa.table(
            {
                "record_key": pa.array([w[0] for w in wanted], pa.string()),
                "run_id": pa.array([w[1] for w in wanted], pa.string()),
                "pos": pa.array(range(len(wanted)), pa.int64()),
            }
        )
        with registered(self._con, "wanted_records", keys):
            found = self._con.sql(
                "SELECT r.source, r.stream, r.run_id, r.record_key, r.kid, r.nonce, r.ciphertext, w.pos "
                "FROM wanted_records w JOIN records r ON r.record_key = w.record_key AND r.run_id = w.run_id "
                "WHERE r.source = $source AND r.stream = $stream",
                params={"source": source, "stream": stream},
            ).to_arrow_table()
        aads = associated_data(_RECORD_LABEL, FORMAT, [found[c] for c in _RECORD_KEY_COLUMNS])
        out: list[dict[str, str | None] | None] = [None] * len(wanted)
        rows = zip(*(found[c].to_pylist() for c in found.column_names), strict=True)
        for row, aad in zip(rows, aads, strict=True):
            out[row[-1]] = json.loads(self._open_as(_RECORD_LABEL, "records", row, 4, aad))
        return out

    def forget_records(self, source: str, stream: str, record_keys: Iterable[str]) -> int:
        """Erase every sealed version of the given records (a source deleted them, or erasure was asked)."""
        keys = pa.table({"record_key": pa.array(sorted(set(map(str, record_keys))), pa.string())})
        with transaction(self._con), registered(self._con, "gone", keys):
            n = self._con.execute(
                "SELECT count(*) FROM records JOIN gone USING (record_key) WHERE source = ? AND stream = ?",
                [source, stream],
            ).fetchone()[0]
            self._con.execute(
                "DELETE FROM records WHERE source = ? AND stream = ? AND record_key IN "
                "(SELECT record_key FROM gone)",
                [source, stream],
            )
        return n

    def sealed_list(self, name: str) -> list[str]:
        """A sealed list of strings (e.g. the known names the free-text scrubber looks for); [] if none."""
        row = self._con.execute(
            "SELECT name, kid, nonce, ciphertext FROM sealed_lists WHERE name = ?", [name]
        ).fetchone()
        return json.loads(self._open_as(_LIST_LABEL, "sealed_lists", row, 1)) if row else []

    def put_sealed_list(self, name: str, values: Iterable[str]) -> None:
        plain = json.dumps(sorted(set(values)), ensure_ascii=False)
        with transaction(self._con):
            self._write_to("sealed_lists", ("name",), [self._seal_as(_LIST_LABEL, (name,), plain)])

    def forget_persons(self, keep: Iterable[tuple[str, str, str]]) -> int:
        """Delete identifier rows whose (system, record_key) no longer maps to that person_key.

        ``keep`` is the identity map's ``(system, record_key, person_key)`` triples: after a merge or split a
        record's values move to its new person (put again by the caller), and the old rows go.
        """
        table = string_table(keep, ("system", "record_key", "person_key"))
        with transaction(self._con), registered(self._con, "current_map", table):
            n = self._con.execute(
                "SELECT count(*) FROM identifiers i ANTI JOIN current_map m "
                "USING (system, record_key, person_key)"
            ).fetchone()[0]
            for name in ("identifiers", "filings"):
                self._con.execute(
                    f"DELETE FROM {name} WHERE NOT EXISTS (SELECT 1 FROM current_map m "
                    f"WHERE m.system = {name}.system AND m.record_key = {name}.record_key "
                    f"AND m.person_key = {name}.person_key)"
                ).fetchall()
        return n

    def stale_records(self, source: str, stream: str, system: str, mapped: pa.Table) -> pa.Table:
        """The records of ``mapped`` whose identifiers must be filed again (`vault_filings.stale_records`)."""
        return vault_filings.stale_records(self._con, source, stream, system, mapped)

    def digests(self, plains: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Keyed digests (`vault_columns.digest`, under the active key) of UTF-8 ``plains``; null stays null."""
        keyed, values = digest_key(self._ring.active.material), pc.cast(plains, pa.binary()).to_pylist()
        return pa.array([None if p is None else digest(keyed, p) for p in values], pa.binary())

    def record_digests(self, source: str, stream: str, wanted: pa.Table) -> pa.Array:
        """The digest of each sealed version ``wanted`` (``record_key, run_id``) names, in order; null if none."""
        return vault_filings.version_digests(self._con, source, stream, wanted)

    def note_filed(self, source: str, stream: str, system: str, filed: pa.Table) -> None:
        """Remember the version and person key ``filed``'s identifiers now reflect (`vault_filings`)."""
        with transaction(self._con):
            vault_filings.note_filed(self._con, source, stream, system, filed)

    def forget_fields(self, records: Iterable[tuple[str, str]], keep: Iterable[tuple[str, str, str]]) -> int:
        """Delete the identifier rows of ``records`` (system, record_key) whose (system, record_key, field) is
        not in ``keep``: the fields a record's newest version leaves blank. Returns how many went."""
        refiled = string_table(records, ("system", "record_key"))
        kept = string_table(keep, ("system", "record_key", "field"))
        gone = (
            "FROM identifiers i SEMI JOIN refiled r USING (system, record_key) "
            "ANTI JOIN kept k USING (system, record_key, field)"
        )
        with (
            transaction(self._con),
            registered(self._con, "refiled", refiled),
            registered(self._con, "kept", kept),
        ):
            n = self._con.execute(f"SELECT count(*) {gone}").fetchall()[0][0]
            if n:
                self._con.execute(
                    f"DELETE FROM identifiers WHERE (person_key, field, system, record_key) IN "
                    f"(SELECT person_key, field, system, record_key {gone})"
                ).fetchall()
        return n

    def mark(self, name: str) -> str | None:
        """A bookkeeping value kept in the vault (``vault_meta``), or None."""
        row = self._con.execute("SELECT value FROM vault_meta WHERE name = ?", [name]).fetchone()
        return row[0] if row else None

    def set_mark(self, name: str, value: str | None) -> None:
        """Set a bookkeeping value; None removes it."""
        if value is None:
            self._con.execute("DELETE FROM vault_meta WHERE name = ?", [name])
        else:
            self._con.execute("INSERT OR REPLACE INTO vault_meta VALUES (?, ?)", [name, value])

    # -- internals -------------------------------------------------------------------------------------

    def _put_chunk(self, chunk: pa.Table) -> PutResult:
        """Seal and write the rows of ``chunk`` that are new or whose plaintext changed; only the stored
        values of keys already present are decrypted (to compare). A changed row is deleted, then inserted
        with the new ones (a plain INSERT costs less than INSERT OR REPLACE)."""
        incoming = chunk.select(list(_KEY_COLUMNS)).append_column("pos", pa.array(range(chunk.num_rows)))
        values = chunk["value"].to_pylist()
        with transaction(self._con), registered(self._con, "incoming", incoming):
            existing = self._con.execute(
                "SELECT n.pos, i.* FROM identifiers i JOIN incoming n USING (person_key, field, system, record_key)"
            ).fetchall()
            same = {r[0] for r in existing if self._open(r[1:]) == values[r[0]]}
            changed = [r[0] for r in existing if r[0] not in same]
            if changed:
                self._con.execute(
                    "DELETE FROM identifiers WHERE (person_key, field, system, record_key) IN (SELECT "
                    "person_key, field, system, record_key FROM incoming WHERE list_contains(?, pos))",
                    [changed],
                )
            wanted = pa.array([i for i in range(chunk.num_rows) if i not in same], pa.int64())
            self._write(chunk.take(wanted))
        replaced = len(existing) - len(same)
        return PutResult(len(wanted) - replaced, replaced, len(same))

    def _use(self, keyring: KeyRing) -> None:
        self._ring = keyring
        self._ciphers: dict[str, AESGCM] = {}

    def _cipher(self, kid: str) -> AESGCM:
        if kid not in self._ciphers:
            self._ciphers[kid] = AESGCM(self._ring.key(kid).material)
        return self._ciphers[kid]

    def _open(self, row: Sequence) -> str:
        person_key, field_, system, record_key, kid, nonce, ciphertext = row
        cipher = self._cipher(kid)
        try:
            plain = cipher.decrypt(bytes(nonce), bytes(ciphertext), _aad(row[:4]))
        except InvalidTag:
            raise VaultIntegrityError(
                f"vault value {field_!r} of {person_key} ({system}/{record_key}) failed authentication "
                f"under key id {kid!r} (purpose {VAULT!r}): the key configured for {kid!r} is not the one "
                "that sealed it, or the row was altered or moved"
            ) from None
        return plain.decode("utf-8")

    def _seal_as(self, label: str, key: Sequence[str], plaintext: str) -> tuple:
        kid = self._ring.active.kid
        nonce = secrets.token_bytes(NONCE_BYTES)
        return (
            *key,
            kid,
            nonce,
            self._cipher(kid).encrypt(nonce, plaintext.encode("utf-8"), _aad(key, label)),
        )

    def _open_as(self, label: str, table: str, row: Sequence, width: int, aad: bytes | None = None) -> str:
        if label == "islandbridge-vault":
            return self._open(row)
        key, (kid, nonce, ciphertext) = row[:width], row[width : width + 3]
        try:
            aad = aad or _aad(key, label)  # given when built a column at a time (`associated_data`)
            return self._cipher(kid).decrypt(bytes(nonce), bytes(ciphertext), aad).decode("utf-8")
        except InvalidTag:
            raise VaultIntegrityError(
                f"vault {table} row {'/'.join(map(str, key))} failed authentication under key id {kid!r} "
                f"(purpose {VAULT!r}): the key configured for {kid!r} is not the one that sealed it, or the row "
                "was altered or moved"
            ) from None

    def _write_to(
        self, table: str, key_columns: Sequence[str], sealed: list[tuple], digests: list[bytes] | None = None
    ) -> None:
        if not sealed:
            return
        names = [*key_columns, "kid", "nonce", "ciphertext"]
        types = [pa.string()] * (len(key_columns) + 1) + [pa.binary(), pa.binary()]
        columns = [pa.array(c, t) for c, t in zip(zip(*sealed, strict=True), types, strict=True)]
        if digests is not None:
            names, columns = [*names, "digest"], [*columns, pa.array(digests, pa.binary())]
        staged = pa.table(columns, names=names)
        with registered(self._con, "staged", staged):  # named: columns not staged (a digest) are kept
            self._con.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(names)}) SELECT * FROM staged")

    def _write(self, rows: pa.Table) -> None:
        """Seal ``rows`` (key columns and ``value``, keys not stored) under the active key and insert them."""
        if not rows.num_rows:
            return
        kid = self._ring.active.kid
        keys = [rows[c] for c in _KEY_COLUMNS]
        nonces, ciphertexts = seal_column(
            self._cipher(kid), rows["value"], associated_data(_LABEL, FORMAT, keys)
        )
        staged = pa.table(
            [*keys, pa.array([kid] * rows.num_rows, pa.string()), nonces, ciphertexts],
            names=[*_KEY_COLUMNS, "kid", "nonce", "ciphertext"],
        )
        with registered(self._con, "staged", staged):
            self._con.execute("INSERT INTO identifiers SELECT * FROM staged")


def _connect_waiting(
    path: Path, wait_s: float, resources: DuckDBResources | None
) -> duckdb.DuckDBPyConnection:
    try:
        return storage.connect(str(path), resources=resources, lock_wait_s=wait_s)
    except duckdb.Error as exc:  # IOException, or a damaged file's plain Error (a bad checksum)
        if (holder := storage.lock_holder(exc)) is None:  # not a DuckDB file, damaged: no use waiting
            raise VaultError(f"cannot open the vault {path}: {str(exc).splitlines()[0]}") from None
        raise VaultError(f"the vault {path} is held by {holder}; try again when it is done") from None


def _aad(key: Sequence[str], label: str = "islandbridge-vault") -> bytes:  # one row; vault_columns: many
    return json.dumps([label, FORMAT, *key], ensure_ascii=False).encode("utf-8")


_LABEL = "islandbridge-vault"
_RECORD_LABEL = "islandbridge-vault-record"
_LIST_LABEL = "islandbridge-vault-list"


def _check_fields(fields: Iterable[str]) -> None:
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise VaultError(f"unknown vault {noun(len(unknown), 'field')} {unknown}; known: {', '.join(FIELDS)}")
