"""The landing zone: what each run extracted, as Parquet, before anything is loaded.

Layout under the configured storage URL (any filesystem ``pyarrow.fs`` can open; ``file://`` by
default)::

    {root}/{run_id}/{source}/{stream}/part-00000.parquet   one dataset per source table per run
    {root}/{run_id}/{source}/_quarantine/part-00000.parquet records set aside, with the reason
    {root}/{run_id}/{source}/_deleted/part-00000.parquet    record keys the source no longer has
    {root}/{run_id}/{source}/_manifest.json                written last: counts, files, the next state

Raw values are landed as text, exactly as they came (an Excel-damaged ``5.11403E+17`` stays that
string), so the raw contract never changes type from one batch to the next. A source's folder is
replaced as a whole when its extraction is re-run, and the manifest is written only after every part,
so a half-written extraction is recognisable (no manifest) and never loaded.

The landed rows and the ``_quarantine`` JSON hold identifiers in clear (the gate checks them there), so on
a local disk the writer makes every folder 0700 and every file it writes 0600 (`private`), and the
command's umask (077) makes whatever else lands there (the gate's rewritten slice) so too. A slice lives only until its load commits: an extraction that fails is discarded
(``LandingWriter.discard``), a slice the quality gate stopped stays (owner-only) so that it can be
validated again after an override, until a later run loads (``remove_abandoned``) or it is re-extracted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import posixpath
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from islandbridge.config import DuckDBResources
from islandbridge.connectors.base import Stream
from islandbridge.errors import FatalSourceError, TerminalError, noun
from islandbridge.landing.dedupe import KeyIndex, resolve
from islandbridge.privacy.scrub import scrub
from islandbridge.schemas import RECORD_KEY

MANIFEST = "_manifest.json"
QUARANTINE = "_quarantine"
DELETED = "_deleted"
QUARANTINE_SCHEMA = pa.schema(
    [
        ("stream", pa.string()),
        (RECORD_KEY, pa.string()),
        ("reason", pa.string()),
        ("record_json", pa.string()),
    ]
)
DELETED_SCHEMA = pa.schema([("stream", pa.string()), (RECORD_KEY, pa.string())])
#: Batches of a repeating stream handed to the writer thread and not yet admitted: at most this many.
PENDING_BATCHES = 8


class AccountingError(TerminalError):
    """A connector read records that it neither landed, quarantined nor counted as duplicates.

    Terminal: a bug in the connector, which a retry repeats; a developer must fix it."""


def to_text(value: Any) -> str | None:
    """The raw text of a source value: lossless, one form per type, never a locale's guess."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def text_column(values: list[Any]) -> pa.Array:
    """``to_text`` of each value, as an Arrow text column: converted by Arrow where the whole column is
    text, whole numbers, booleans or nulls (whose text Arrow writes exactly as ``to_text`` does), cell by
    cell otherwise (floats, dates, decimals, nested values, mixed types)."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, OverflowError, UnicodeError, TypeError, ValueError):
        array = None
    if array is not None and _arrow_texts_like_to_text(array.type):
        return array.cast(pa.string())
    return pa.array(
        [None if v is None else repr(v) if type(v) is float else to_text(v) for v in values], pa.string()
    )


def _arrow_texts_like_to_text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    )


def open_root(url: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and root path of a storage URL (``file:///srv/landing``, ``s3://bucket/x``)."""
    fs, path = pafs.FileSystem.from_uri(url)
    return fs, path.rstrip("/")


@dataclass
class StreamCounts:
    read: int = 0
    landed: int = 0
    quarantined: int = 0
    duplicates: int = 0
    deleted: int = 0

    def balanced(self) -> bool:
        return self.read == self.landed + self.quarantined + self.duplicates


#: The accounting of a stream, as the manifest and ``meta.run_sources`` record it.
COUNT_FIELDS = tuple(f.name for f in fields(StreamCounts))


def path_exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def private(fs: pafs.FileSystem, *paths: str) -> None:
    """Make landed folders 0700 and files 0600 on a local disk (other filesystems have their own ACLs)."""
    if not isinstance(fs, pafs.LocalFileSystem):
        return
    for path in paths:
        with contextlib.suppress(OSError):  # a folder this process does not own keeps its mode
            os.chmod(path, 0o700 if os.path.isdir(path) else 0o600)


def write_part(
    fs: pafs.FileSystem, folder: str, index: int, table: pa.Table, unique: Sequence[str] = ()
) -> None:
    """Write ``table`` as ``{folder}/part-{index:05d}.parquet``, the one form every landed part takes.
    ``unique``: columns not worth a dictionary (keys: every value differs; trying costs time and space)."""
    fs.create_dir(folder, recursive=True)
    path = posixpath.join(folder, f"part-{index:05d}.parquet")
    private(fs, folder)
    dictionary = [c for c in table.column_names if c not in unique] if unique else True
    pq.write_table(table, path, filesystem=fs, compression="zstd", use_dictionary=dictionary)
    private(fs, path)


#: A stream's columns are judged for a dictionary on its first part of at least this many rows.
DICTIONARY_SAMPLE = 10_000


def unique_columns(table: pa.Table, keys: Sequence[str]) -> tuple[str, ...]:
    """The columns of a part not worth a dictionary: ``keys``, and any column of which at least half
    the values differ (the event log's millisecond ``ts``: the writer would build a dictionary up to
    1 MiB before giving up, time spent for a larger file). Only the files' encoding depends on it."""
    return tuple(
        c
        for c in table.column_names
        if c in keys or pc.count_distinct(table.column(c)).as_py() * 2 >= table.num_rows
    )


def write_manifest(fs: pafs.FileSystem, base: str, manifest: Mapping[str, Any]) -> None:
    """Write a slice's manifest atomically (a temporary name, then a move): it is what marks it complete."""
    tmp = posixpath.join(base, MANIFEST + ".tmp")
    with fs.open_output_stream(tmp) as out:
        private(fs, tmp)
        out.write(json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode())
    fs.move(tmp, posixpath.join(base, MANIFEST))


def remove_abandoned(url: str, before_run_id: str) -> list[str]:
    """Delete every run folder older than ``before_run_id`` (run ids sort by as-of): slices an extraction
    left when it failed or the gate stopped it. Called once a later run has loaded; the data they held is
    read again by any run that needs it (state is committed only with a load). Returns the run ids."""
    fs, root = open_root(url)
    if not path_exists(fs, root):
        return []
    gone = []
    for info in fs.get_file_info(pafs.FileSelector(root)):
        name = posixpath.basename(info.path)
        if info.type == pafs.FileType.Directory and name.startswith("ib_") and name < before_run_id:
            fs.delete_dir(info.path)
            gone.append(name)
    return sorted(gone)


@dataclass
class LandingWriter:
    """The ``Sink`` a connector extracts into; buffers rows and writes bounded Parquet parts.

    A repeating stream's batches (``Stream.dedupe``) are admitted by their keys and written as parts on
    a thread of the writer's own, in the order they came (`_submit`); ``close`` waits for it, and
    ``discard`` too, so no part outlives a discarded slice. Not itself thread-safe: one connector
    thread calls it.

    Example::

        writer = LandingWriter.open(url, run_id, "grid", connector.streams())
        state = connector.extract(ExtractContext(run_id, as_of, old_state, writer))
        manifest = writer.close(state)
    """

    fs: pafs.FileSystem
    base: str
    streams: Mapping[str, Stream]
    part_rows: int = 50_000
    # The memory limit and spill folder of the DuckDB that settles repeated keys (settings.duckdb).
    resources: DuckDBResources | None = None
    counts: dict[str, StreamCounts] = field(default_factory=lambda: defaultdict(StreamCounts))
    _buffers: dict[str, list[Mapping[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _tables: dict[str, list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    _indexes: dict[str, KeyIndex] = field(default_factory=lambda: defaultdict(KeyIndex))
    _parts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _written: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _quarantine: list[dict[str, Any]] = field(default_factory=list)
    _deleted: list[dict[str, Any]] = field(default_factory=list)
    _files: list[dict[str, Any]] = field(default_factory=list)
    _unique: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per stream, see `unique_columns`
    _worker: ThreadPoolExecutor | None = None
    _pending: deque[Future] = field(default_factory=deque)

    @classmethod
    def open(
        cls,
        url: str,
        run_id: str,
        source: str,
        streams: Sequence[Stream],
        part_rows: int = 50_000,
        resources: DuckDBResources | None = None,
    ):
        """Start (or restart) the landing of one source for one run: its folder is emptied first.
        ``resources`` bound the dedupe's DuckDB (``settings.duckdb``)."""
        fs, root = open_root(url)
        base = posixpath.join(root, run_id, source)
        if path_exists(fs, base):
            fs.delete_dir(base)
        fs.create_dir(base, recursive=True)
        private(fs, root, posixpath.dirname(base), base)
        return cls(fs, base, {s.name: s for s in streams}, part_rows, resources)

    def discard(self) -> None:
        """Delete this slice (an extraction that failed: it can never be loaded), and its run's folder
        when nothing else is in it."""
        self._stop_worker(raising=False)  # a part still being written would outlive the folder
        if path_exists(self.fs, self.base):
            self.fs.delete_dir(self.base)
        run = posixpath.dirname(self.base)
        if path_exists(self.fs, run) and not self.fs.get_file_info(pafs.FileSelector(run)):
            self.fs.delete_dir(run)

    def read(self, stream: str, n: int = 1) -> None:
        self._stream(stream)
        self.counts[stream].read += n

    def write(self, stream: str, records: Iterable[Mapping[str, Any]]) -> int:
        spec = self._stream(stream)
        buffer = self._buffers[stream]
        declared = frozenset(spec.columns)  # once per batch; each record's keys are then checked in C
        n = 0
        for record in records:
            if not declared.issuperset(record):
                raise SchemaDriftError(stream, sorted(set(record) - declared), spec.columns)
            buffer.append(record)
            n += 1
            if len(buffer) >= self.part_rows:
                if spec.dedupe:
                    self._add_table(spec, self._buffered_table(spec))
                else:
                    self._flush(spec)
        self.counts[stream].landed += n
        if spec.dedupe and buffer:  # a repeating stream is admitted batch by batch, by its keys
            self._add_table(spec, self._buffered_table(spec))
        return n

    def write_batch(
        self, stream: str, columns: Mapping[str, pa.Array | Sequence[Any]], record_keys: pa.Array
    ) -> int:
        """Land rows given as columns, each counted as landed: the parts are those ``write`` makes of the
        same rows as records. A column is Arrow text, landed as it is, or a list of values, converted as
        ``write`` converts them (``text_column``); a declared column not given is NULL. ``record_keys``
        are the rows' ``Stream.record_key``. Undeclared columns are schema drift."""
        spec = self._stream(stream)
        unknown = sorted(set(columns) - set(spec.columns))
        if unknown:
            raise SchemaDriftError(stream, unknown, spec.columns)
        n = len(record_keys)
        arrays = [
            pa.nulls(n, pa.string())
            if c not in columns
            else columns[c]
            if isinstance(columns[c], pa.Array)
            else text_column(list(columns[c]))
            for c in spec.columns
        ]
        table = pa.Table.from_arrays([*arrays, record_keys], schema=raw_schema(spec))
        if spec.dedupe:  # a repeating stream is admitted by its keys, as write_table admits it
            return self.write_table(stream, table)
        if self._buffers[stream]:  # records written before this batch go first
            self._flush(spec)
        self._tables[stream].append(table)
        pending = sum(t.num_rows for t in self._tables[stream])
        if pending >= self.part_rows:
            rows = pa.concat_tables(self._tables[stream])
            whole = pending - pending % self.part_rows
            for start in range(0, whole, self.part_rows):
                self._write_landed(spec, rows.slice(start, self.part_rows))
            self._tables[stream] = [rows.slice(whole)] if whole < pending else []
        self.counts[stream].landed += n
        return n

    def write_table(self, stream: str, table: pa.Table) -> int:
        """Land rows already in the landing zone's form (``raw_schema``: every column as text, and the
        record key), e.g. a page of events converted column-wise; counted as landed."""
        spec = self._stream(stream)
        schema = raw_schema(spec)
        if table.schema != schema:
            unknown = sorted(set(table.schema.names) - set(schema.names))
            raise SchemaDriftError(stream, unknown or ["(columns of another type)"], spec.columns)
        if self._buffers[stream]:
            self._add_table(spec, self._buffered_table(spec))
        self._add_table(spec, table)
        self.counts[stream].landed += table.num_rows
        return table.num_rows

    def _add_table(self, spec: Stream, table: pa.Table) -> None:
        if spec.dedupe:  # admitted and written on the writer thread, in the order given
            self._submit(self._admit, spec, table)
        else:
            self._append(spec, table)

    def _admit(self, spec: Stream, table: pa.Table) -> None:
        self._append(spec, self._indexes[spec.name].admit(table))

    def _append(self, spec: Stream, table: pa.Table) -> None:
        tables = self._tables[spec.name]
        tables.append(table)
        if sum(t.num_rows for t in tables) >= self.part_rows:
            self._write_tables(spec)

    def quarantine(self, stream: str, record_key: str, reason: str, record: Mapping[str, Any]) -> None:
        self._stream(stream)
        raw = json.dumps({k: to_text(v) for k, v in record.items()}, ensure_ascii=False, sort_keys=True)
        self._quarantine.append(
            {"stream": stream, RECORD_KEY: record_key, "reason": reason, "record_json": raw}
        )
        self.counts[stream].quarantined += 1

    def duplicate(self, stream: str, n: int = 1) -> None:
        self._stream(stream)
        self.counts[stream].duplicates += n

    def scrubbed(self, text: str) -> str:
        return scrub(text)

    def deleted(self, stream: str, record_keys: Iterable[str]) -> None:
        self._stream(stream)
        for key in record_keys:
            self._deleted.append({"stream": stream, RECORD_KEY: key})
            self.counts[stream].deleted += 1

    def file(self, stream: str | None, name: str, outcome: str, reason: str | None, rows: int = 0) -> None:
        if stream is not None:
            self._stream(stream)
        self._files.append(
            {"stream": stream, "file": name, "outcome": outcome, "reason": reason, "rows": rows}
        )

    def close(self, state: Mapping[str, Any], read_from: dt.datetime | None = None) -> dict[str, Any]:
        """Flush everything, check the accounting, and write the manifest last. Returns the manifest.

        ``read_from`` is the as-of of the state the extraction resumed from (``None``: it had none), so
        the slice says which interval it read (`quality.tablechecks.flow`)."""
        self._stop_worker(raising=True)
        for spec in self.streams.values():
            self._flush(spec)
            if spec.dedupe:
                self._dedupe(spec)
        unbalanced = {
            s: c for s, c in self.counts.items() if not c.balanced() or c.landed != self._written[s]
        }
        if unbalanced:
            detail = "; ".join(
                f"{s}: read {c.read}, landed {c.landed} (written {self._written[s]}), "
                f"quarantined {c.quarantined}, duplicates {c.duplicates}"
                for s, c in unbalanced.items()
            )
            raise AccountingError(f"records lost in {self.base}: {detail}")
        self._write_table(QUARANTINE, pa.Table.from_pylist(self._quarantine, QUARANTINE_SCHEMA))
        self._write_table(DELETED, pa.Table.from_pylist(self._deleted, DELETED_SCHEMA))
        manifest = {
            "streams": {
                name: {
                    **vars(self.counts[name]),
                    "parts": self._parts[name],
                    "key": list(spec.key_columns),
                    "columns": list(spec.columns),
                }
                for name, spec in self.streams.items()
            },
            "state": dict(state),
            "read_from": None if read_from is None else read_from.isoformat(),
            "files": sorted(self._files, key=lambda f: (f["file"], f["outcome"])),
        }
        write_manifest(self.fs, self.base, manifest)
        return manifest

    def _stream(self, name: str) -> Stream:
        try:
            return self.streams[name]
        except KeyError:
            raise KeyError(f"unknown stream {name!r}; declared: {', '.join(self.streams)}") from None

    def _submit(self, job: Callable[..., None], *args: Any) -> None:
        """Run ``job(*args)`` on the writer thread, after the jobs submitted before it.

        The admission of a repeating stream's batches and the writing of its parts (numpy and Parquet,
        mostly without the GIL) overlap the connector's own work. At most ``PENDING_BATCHES`` wait; an
        error of a job is raised here, at a later submission, or by ``close``."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="landing")
        while self._pending and (self._pending[0].done() or len(self._pending) >= PENDING_BATCHES):
            self._pending.popleft().result()
        self._pending.append(self._worker.submit(job, *args))

    def _stop_worker(self, raising: bool) -> None:
        """Wait for the writer thread's jobs (raising the first error when ``raising``) and end it."""
        try:
            while self._pending:
                future = self._pending.popleft()
                if raising:
                    future.result()
                else:
                    future.exception()
        finally:
            if self._worker is not None:
                self._worker.shutdown(wait=True, cancel_futures=True)
                self._worker = None
            self._pending.clear()

    def _flush(self, spec: Stream) -> None:
        """Write what is buffered for a stream as its next part (a stream's first part even when empty)."""
        if self._buffers[spec.name]:
            self._tables[spec.name].append(self._buffered_table(spec))
        self._write_tables(spec)

    def _write_tables(self, spec: Stream) -> None:
        """Write the tables gathered for a stream as its next part (on the writer thread for a repeating
        stream: it does not look at the records buffered by ``write``)."""
        tables = self._tables[spec.name]
        if not any(t.num_rows for t in tables) and self._parts[spec.name] > 0:
            tables.clear()
            return
        table = pa.concat_tables(tables) if tables else raw_schema(spec).empty_table()
        tables.clear()
        self._write_landed(spec, table)

    def _write_landed(self, spec: Stream, table: pa.Table) -> None:
        self._write_part(spec, self._parts[spec.name], table)
        self._written[spec.name] += table.num_rows
        self._parts[spec.name] += 1

    def _buffered_table(self, spec: Stream) -> pa.Table:
        """The buffered records of a stream in the landing zone's form; the buffer is emptied."""
        rows = list(self._buffers[spec.name])
        self._buffers[spec.name].clear()  # in place: write() holds a reference to this list
        columns = {c: text_column([r.get(c) for r in rows]) for c in spec.columns}
        columns[RECORD_KEY] = pa.array(spec.record_keys(rows), pa.string())
        return pa.Table.from_pydict(columns, raw_schema(spec))

    def _write_part(self, spec: Stream, index: int, table: pa.Table) -> None:
        unique = self._unique.get(spec.name) or (*spec.key_columns, RECORD_KEY)
        if spec.name not in self._unique and table.num_rows >= DICTIONARY_SAMPLE:
            unique = self._unique[spec.name] = unique_columns(table, unique)
        write_part(self.fs, posixpath.join(self.base, spec.name), index, table, unique)

    def _dedupe(self, spec: Stream) -> None:
        """Keep one row per record key of a repeating stream; the rest become duplicates.

        The rows were admitted by their keys' hashes as they were written (`landing.dedupe`); here only
        the rows held aside as possible repeats are settled against the parts. Copies of one key are
        identical in an at-least-once log; where they are not, the smallest row wins, so the result is
        the same whatever the arrival order. Nothing of the log is rewritten unless such a copy beats
        the one landed.
        """
        index = self._indexes[spec.name]
        parts = self._parts[spec.name]

        def write(part: int, table: pa.Table) -> None:
            self._write_part(spec, part, table)
            if part >= self._parts[spec.name]:
                self._parts[spec.name] = part + 1

        folder = posixpath.join(self.base, spec.name)
        added, removed = resolve(index, self.fs, folder, parts, spec.columns, write, self.resources)
        self._written[spec.name] += added - removed
        dropped = self.counts[spec.name].landed - self._written[spec.name]
        self.counts[spec.name].landed -= dropped
        self.counts[spec.name].duplicates += dropped

    def _write_table(self, folder: str, table: pa.Table) -> None:
        write_part(self.fs, posixpath.join(self.base, folder), 0, table)


def raw_schema(spec: Stream) -> pa.Schema:
    """Every raw column as text, plus the record key."""
    return pa.schema([(c, pa.string()) for c in spec.columns] + [(RECORD_KEY, pa.string())])


class SchemaDriftError(FatalSourceError):
    """The source sent fields its raw contract does not declare: a person must look before we load.

    Terminal (a ``FatalSourceError``): the source broke its contract; the stream definition must change."""

    def __init__(self, stream: str, unknown: list[str], declared: Sequence[str]) -> None:
        super().__init__(
            f"schema drift in stream {stream!r}: undeclared {noun(len(unknown), 'field')} {', '.join(unknown)}; "
            f"declared: {', '.join(declared)}. Add them to the connector's stream definition if expected."
        )
