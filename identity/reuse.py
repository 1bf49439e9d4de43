"""Normalised records kept between runs: a record whose source row is unchanged is not normalised again.

Reading a record back from the vault and normalising it (names to pinyin, phones, addresses, ID numbers)
is most of what building the record table costs, and on a daily run nearly every record is the one of
the day before. So after a stream is normalised its rows are kept — sealed under the vault key, since
they hold names, ID numbers and phones — in one file per stream beside the vault
(``<vault dir>/normalised/<source>__<stream>.sealed``, owner-only): the `FEATURES` of each record,
keyed by its record key and a content hash of its source columns (an MD5 of the warehouse columns it
reads, the registry's house parts included, and the vault's keyed digest of its sealed columns,
`privacy.vault_columns.digest`). A file belongs to one *context*: the normalisers' code (a hash of the
modules that shape a record's features), the stream's configuration and the estate names the address
normaliser reads; a file of another context is not read, so a code change normalises everything again.
What else the registry's places give a record (an estate-less address placed through the houses of its
grid, its community) changes as houses come and go, so it is applied after reuse, to every record
(`records.placed`).

A later run reuses a kept row when the record key and content hash are unchanged and the row did not
depend on the as-of (a legacy number's century, ``as_of_bound``); ``first_seen_run``, ``last_seen_run``
and ``born_by`` come from the run. Every other record is read back from the vault and normalised as
before. ``full=True`` (``islandbridge reconcile --full``) normalises every record and writes the files
afresh; the record table is the same either way (tests/test_living_identity.py compares them day by
day). A file that cannot be opened (its key rotated out of the ring, a damaged file) is passed over with
a warning, and the stream is normalised in full.

Example::

    reuse = Reuse(vault, as_of)
    records = load_records(con, plan, as_of, SealedColumns(vault), reuse)
    reuse.counts            # {"reused": 76220, "normalised": 1056}: an unchanged day, 30,000 residents
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.config import DuckDBResources
from islandbridge.identity import contacts as contacts_module
from islandbridge.identity import places as places_module
from islandbridge.identity import records as records_module
from islandbridge.identity import values as values_module
from islandbridge.identity.records import FEATURES, BoundStream
from islandbridge.identity.values import born_by
from islandbridge.privacy import scrub as scrub_module
from islandbridge.privacy.sealed_files import SealedFileError, read_sealed, spill_folder, write_sealed
from islandbridge.privacy.vault import Vault
from islandbridge.storage import connect, registered
from islandbridge.transforms import normalize

log = logging.getLogger(__name__)

FORMAT = "1"
_LABEL = "islandbridge-normalised"
_RUN_COLUMNS = ("record_key", "first_seen_run", "last_seen_run")
UNPLACED = pa.schema(  # what `records._unplaced` gives
    [*FEATURES, ("as_of_bound", pa.bool_()), ("r_grid", pa.string()), ("r_community", pa.string())]
)
KEPT = pa.schema([*UNPLACED, ("raw_hash", pa.string()), ("digest", pa.binary())])
KEPT_ROWS = pa.schema(
    [*KEPT, ("kept", pa.bool_())]
)  # a kept file's rows: ``kept`` false, a record naming nobody


#: The libraries the normalisers call: an upgrade can change a pinyin, a phone's form or an ID's validity.
LIBRARIES = ("opencc", "phonenumbers", "pypinyin", "python-stdnum")


def code_version() -> str:
    """A hash of the modules whose code shapes a record's features or the kept rows (this one), and of
    the versions of the `LIBRARIES` they call: any change to them changes it."""
    modules = (records_module, values_module, places_module, contacts_module, scrub_module)
    files = [Path(__file__), *(Path(m.__file__) for m in modules)]
    files += sorted(Path(normalize.__file__).parent.glob("*.py"))
    versions = json.dumps([(name, metadata.version(name)) for name in LIBRARIES]).encode("utf-8")
    return hashlib.sha256(b"".join(f.read_bytes() for f in files) + versions).hexdigest()


def kept_files(vault_path: Path) -> list[tuple[Path, bytes]]:
    """Each kept stream's file beside the vault at ``vault_path`` and the associated data it may be sealed
    with (one pair per way of splitting its name into source and stream): what `keys rotate` re-seals."""
    folder = vault_path.parent / "normalised"
    found = []
    for path in sorted(folder.glob("*.sealed")):
        # a source's name may hold '__' too: each split is a candidate, and only the right one opens
        parts = path.stem.split("__")
        for cut in range(len(parts) - 1, 0, -1):
            source, stream = "__".join(parts[:cut]), "__".join(parts[cut:])
            found.append((path, json.dumps([_LABEL, FORMAT, source, stream]).encode("utf-8")))
    return found


class Reuse:
    """Normalises each stream's rows through `records.load_records`, reusing the kept rows of unchanged
    records (see the module docstring); ``counts`` says how many rows were reused and normalised."""

    def __init__(self, vault: Vault, as_of: dt.datetime, *, full: bool = False) -> None:
        self.vault, self.as_of, self.full = vault, as_of, full
        self.directory = vault.path.parent / "normalised"
        self.counts = {"reused": 0, "normalised": 0}
        self._code = code_version()
        # In memory, bounded; it holds decrypted kept rows, so it spills only into the vault's own folder.
        self._con = connect(resources=DuckDBResources.default(spill_folder(self.directory)))

    def __call__(
        self,
        stream: BoundStream,
        data: pa.Table,
        normalise: Callable[[pa.Table], pa.Table],
        estates: Mapping[str, str],
    ) -> pa.Table:
        context = self._context(stream, estates)
        inputs = self._inputs(stream, data)
        kept = None if self.full else self._load(stream, context)
        hits = self._unchanged(kept, inputs, stream) if kept is not None else KEPT_ROWS.empty_table()
        changed = data.filter(pc.invert(pc.is_in(data["record_key"], hits["record_key"])))
        fresh = normalise(changed)
        reused = hits.filter(hits["kept"]).drop_columns(["kept"])
        self.counts["reused"] += reused.num_rows
        self.counts["normalised"] += changed.num_rows
        result = pa.concat_tables([_as_kept(fresh, inputs), reused])
        if kept is None or not self._still_kept(kept, inputs, hits, changed, fresh):
            nobody = inputs.filter(pc.invert(pc.is_in(inputs["record_key"], result["record_key"])))
            self._store(stream, context, result, nobody)
        return result.select(UNPLACED.names)

    def _still_kept(
        self, kept: pa.Table, inputs: pa.Table, hits: pa.Table, changed: pa.Table, fresh: pa.Table
    ) -> bool:
        """Whether the kept file already holds what storing this run's rows would keep: every kept row is
        reused, or is an as-of bound row of a record unchanged since (content hash and digest equal) that
        was normalised again and is as-of bound again — the rows a day without change normalises (legacy
        15-digit numbers), which are never reused, so their kept form need not be rewritten. Then the
        whole file (at 300,000 residents ~100 MB a stream) is not sealed and written again."""
        if hits.num_rows + changed.num_rows != kept.num_rows or fresh.num_rows != changed.num_rows:
            return False
        if not changed.num_rows:
            return True
        if not pc.all(fresh["as_of_bound"]).as_py():
            return False  # no longer as-of bound: kept, it is reused from the next run on
        with registered(self._con, "kept_rows", kept), registered(self._con, "inputs", inputs):
            same = self._con.execute(
                "SELECT count(*) FROM kept_rows k JOIN inputs i USING (record_key) "
                "WHERE k.raw_hash = i.raw_hash AND k.digest = i.digest AND k.as_of_bound AND k.kept"
            ).fetchall()[0][0]
        return same == changed.num_rows

    def _unchanged(self, kept: pa.Table, inputs: pa.Table, stream: BoundStream) -> pa.Table:
        """The kept rows of records unchanged since (content hash and digest equal, not as-of bound), with
        this run's first and last seen runs and ``born_by``; ``kept`` false marks a record that named
        nobody (left out of the record table), so that it is not read back again either."""
        con = self._con
        with registered(con, "kept_rows", kept), registered(con, "inputs", inputs):
            table = con.sql(
                "SELECT k.* REPLACE (i.first_seen_run AS first_seen_run, i.last_seen_run AS last_seen_run, "
                "CAST(? AS VARCHAR) AS born_by) FROM kept_rows k JOIN inputs i USING (record_key) "
                "WHERE k.raw_hash = i.raw_hash AND k.digest = i.digest AND NOT k.as_of_bound",
                params=[born_by(self.as_of, stream.spec.min_age)],
            ).to_arrow_table()
        return table.select(KEPT_ROWS.empty_table().column_names).cast(KEPT_ROWS.empty_table().schema)

    def _inputs(self, stream: BoundStream, data: pa.Table) -> pa.Table:
        """``record_key, first_seen_run, last_seen_run, raw_hash, digest`` of each row of ``data``."""
        columns = [c for c in data.column_names if c not in _RUN_COLUMNS]
        packed = ", ".join(f'"{c}" := d."{c}"' for c in columns)
        raw = f"md5(CAST(to_json(struct_pack({packed})) AS VARCHAR))" if columns else "''"
        with registered(self._con, "d", data):
            hashed = self._con.sql(
                f"SELECT record_key, first_seen_run, last_seen_run, {raw} AS raw_hash FROM d d"
            )
            hashed = hashed.to_arrow_table()
        wanted = hashed.select(["record_key", "last_seen_run"]).rename_columns(["record_key", "run_id"])
        digests = self.vault.record_digests(stream.source, stream.spec.stream, wanted)
        return hashed.append_column("digest", digests)

    def _context(self, stream: BoundStream, estates: Mapping[str, str]) -> str:
        seen = sorted(estates.items())
        text = json.dumps([FORMAT, self._code, stream.source, repr(stream.spec), seen], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _path(self, stream: BoundStream) -> Path:
        return self.directory / f"{stream.source}__{stream.spec.stream}.sealed"

    def _aad(self, stream: BoundStream) -> bytes:
        return json.dumps([_LABEL, FORMAT, stream.source, stream.spec.stream]).encode("utf-8")

    def _load(self, stream: BoundStream, context: str) -> pa.Table | None:
        path = self._path(stream)
        if not path.is_file():
            return None
        try:
            table = pa.ipc.open_stream(read_sealed(self.vault.keyring, path, self._aad(stream))).read_all()
        except (SealedFileError, pa.ArrowInvalid) as exc:
            log.warning(
                "the kept normalised records of %s.%s cannot be read (%s); normalising them all again",
                stream.source,
                stream.spec.stream,
                type(exc.__cause__ or exc).__name__,
            )
            return None
        if (table.schema.metadata or {}).get(b"context") != context.encode("ascii"):
            return None
        return table

    def _store(self, stream: BoundStream, context: str, result: pa.Table, nobody: pa.Table) -> None:
        """Seal this run's rows, and the records that named nobody (``kept`` false), into the stream's file."""
        n = nobody.num_rows
        given = {
            "record_key": nobody["record_key"],
            "raw_hash": nobody["raw_hash"],
            "digest": nobody["digest"],
        }
        given["as_of_bound"] = pa.array([False] * n, pa.bool_())
        nobody = pa.table([given.get(f.name, pa.nulls(n, f.type)) for f in KEPT], schema=KEPT)
        table = _with_kept(pa.concat_tables([result, nobody]), result.num_rows)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema.with_metadata({"context": context})) as writer:
            writer.write_table(table)
        write_sealed(self.vault.keyring, self._path(stream), self._aad(stream), sink.getvalue().to_pybytes())


def _as_kept(fresh: pa.Table, inputs: pa.Table) -> pa.Table:
    """Freshly normalised rows with their record's content hash and digest, as kept rows (`KEPT`)."""
    at = pc.index_in(fresh["record_key"], inputs["record_key"])
    hashes = {"raw_hash": inputs["raw_hash"].take(at), "digest": inputs["digest"].take(at)}
    return pa.table(
        [fresh[f.name] if f.name in fresh.column_names else hashes[f.name] for f in KEPT], schema=KEPT
    )


def _with_kept(table: pa.Table, kept: int | None = None) -> pa.Table:
    """``table`` with a ``kept`` column: true for its first ``kept`` rows (all by default), false after."""
    kept = table.num_rows if kept is None else kept
    return table.append_column(
        "kept", pa.array([True] * kept + [False] * (table.num_rows - kept), pa.bool_())
    )
