"""Keeping one row per record key of a repeating stream, looking only at the keys that repeat.

An at-least-once event log repeats a small share of its events (~0.3%), anywhere in the log. The
landing writer (`landing.zone.LandingWriter`, on its writer thread) admits each batch through a
`KeyIndex`: a row whose key's 64-bit hash was never seen is written to its part at once; a row whose
hash was seen (a repeat, or — rarely — another key with the same hash) is held aside as a *suspect*.
Only the suspects need work when the stream closes (`resolve`): the landed rows with the suspects' keys
are found by scanning the parts' key column (two parts at a time; the other columns are read only from
parts that hold one), and per key the smallest row over every column wins, as it always has (so the
result does not depend on arrival order). Usually the landed copy wins and nothing is rewritten; a part
is rewritten only when a suspect beats its copy (a vendor re-sending different content under one key).

Memory: 8 bytes per landed row for the hashes (sorted runs, merged as they grow: 16 MB for two million
events) and 2–4 for the filter in front of them (`KeyIndex`: at least 16 bits a key, grown in powers of
two), plus the suspects themselves.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from islandbridge import storage
from islandbridge.config import DuckDBResources
from islandbridge.schemas import RECORD_KEY

_EDGE = 32  # bytes hashed from each end of a key; a longer key's middle only adds collisions
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def key_hashes(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each text (its length and its first 64 bytes, or for a longer text its first and
    last 32): equal texts hash alike, whatever the other texts of the batch."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    keys = keys.cast(pa.string())
    n = len(keys)
    if n == 0:
        return np.empty(0, np.uint64)
    offsets = np.frombuffer(keys.buffers()[1], np.int32, n + 1, keys.offset * 4).astype(np.int64)
    data = keys.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    width = int(lengths[0])
    if 0 < width <= 2 * _EDGE and (lengths == width).all():  # one length (ids, uuids): no gather
        window = np.zeros((n, 2 * _EDGE), np.uint8)
        window[:, :width] = data[offsets[0] : offsets[0] + n * width].reshape(n, width)
    else:
        window = _edges(data, starts, lengths)
    words = np.ascontiguousarray(window).view(np.uint64)
    with np.errstate(over="ignore"):
        h = lengths.astype(np.uint64) * _MULTIPLIER
        for j in range(words.shape[1]):
            h = (h ^ words[:, j]) * _MULTIPLIER
            h ^= h >> np.uint64(29)
    return h


def _edges(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each text's window: the text zero-padded to ``2 * _EDGE`` bytes, or for a longer one its first and
    last ``_EDGE`` bytes; one row per text (the same row ``key_hashes`` cuts for texts of one length)."""
    step = np.arange(2 * _EDGE)
    last = len(data) - 1
    window = np.where(step[None, :] < lengths[:, None], data[np.clip(starts[:, None] + step, 0, last)], 0)
    long = lengths > 2 * _EDGE
    if long.any():
        tail = (starts[long] + lengths[long] - _EDGE)[:, None] + step[:_EDGE]
        window[long, _EDGE:] = data[np.clip(tail, 0, last)]
    return window.astype(np.uint8)


class KeyIndex:
    """The hashes of the keys admitted so far, and the rows held aside as suspects.

    The hashes are kept in sorted runs (each at least twice the size of the next, merged as they grow).
    In front of them, a bit per ``2**k`` slots of the hash space (``FILTER_BITS`` bits a key, so about
    one key in 16 finds its bit set by another): a key whose bit is clear is new without a search of
    the runs, which is what almost every key of an event log is."""

    #: Bits of the filter per admitted key (2 bytes a key beside the runs' 8).
    FILTER_BITS = 16

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []  # sorted, each at least twice the size of the next
        self.suspects: list[pa.Table] = []
        self.suspect_rows = 0
        self._admitted = 0
        self._bits = 16  # the filter has 2**_bits slots, indexed by the top _bits of a hash
        self._filter = np.zeros(1 << (self._bits - 3), np.uint8)

    def admit(self, table: pa.Table) -> pa.Table:
        """The rows of ``table`` whose key hash is new (the first of each within the table); the others
        are kept as suspects, to be resolved by `resolve`."""
        if not table.num_rows:
            return table
        hashes = key_hashes(table.column(RECORD_KEY))
        unique, first = np.unique(hashes, return_index=True)
        new = ~self._contains(unique)
        keep = np.zeros(table.num_rows, bool)
        keep[first[new]] = True
        self._add(unique[new])
        if not keep.all():
            aside = table.filter(pa.array(~keep))
            self.suspects.append(aside)
            self.suspect_rows += aside.num_rows
            return table.filter(pa.array(keep))
        return table

    def _contains(self, sorted_hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(sorted_hashes), bool)
        byte, bit = self._slots(sorted_hashes)
        maybe = np.flatnonzero((self._filter[byte] >> bit) & 1)
        if not len(maybe):
            return found
        asked = sorted_hashes[maybe]
        for run in self.runs:
            at = np.searchsorted(run, asked)
            found[maybe] |= run[np.minimum(at, len(run) - 1)] == asked
        return found

    def _add(self, sorted_hashes: np.ndarray) -> None:
        if not len(sorted_hashes):
            return
        self._admitted += len(sorted_hashes)
        if self._admitted * self.FILTER_BITS > 1 << self._bits:  # grown: a larger filter, from the runs
            while self._admitted * self.FILTER_BITS > 1 << self._bits:
                self._bits += 1
            self._filter = np.zeros(1 << (self._bits - 3), np.uint8)
            for run in self.runs:
                self._mark(run)
        self._mark(sorted_hashes)
        self.runs.append(sorted_hashes)
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            newer = self.runs.pop()
            # a stable sort of two sorted runs is a merge (timsort), not a sort
            self.runs[-1] = np.sort(np.concatenate([self.runs[-1], newer]), kind="stable")

    def _slots(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The filter's byte and bit of each hash (its top ``_bits`` bits)."""
        slot = hashes >> np.uint64(64 - self._bits)
        return (slot >> np.uint64(3)).astype(np.intp), (slot & np.uint64(7)).astype(np.uint8)

    def _mark(self, hashes: np.ndarray) -> None:
        byte, bit = self._slots(hashes)
        np.bitwise_or.at(self._filter, byte, np.left_shift(np.uint8(1), bit))


def resolve(
    index: KeyIndex,
    fs: pafs.FileSystem,
    folder: str,
    parts: int,
    columns: tuple[str, ...],
    write: Callable[[int, pa.Table], None],
    resources: DuckDBResources | None = None,
) -> tuple[int, int]:
    """Settle the suspects of a stream landed as ``parts`` parts under ``folder``: per key, the smallest
    row (over the record key and ``columns``, as DuckDB orders them) stays, the others are dropped.
    ``write(index, table)`` writes a part. Returns (rows added, rows removed) in the parts."""
    if not index.suspects:
        return 0, 0
    suspects = pa.concat_tables(index.suspects)
    keys = pc.unique(suspects.column(RECORD_KEY))
    landed = _landed_copies(fs, folder, parts, keys)
    ordered = ", ".join(f'"{c}"' for c in (RECORD_KEY, *columns))
    with storage.connect(resources=resources) as con:
        con.register("_landed", landed)
        con.register("_suspects", suspects)
        winners = con.sql(
            f"SELECT DISTINCT ON ({RECORD_KEY}) * FROM (SELECT *, 0 AS _src FROM _landed "
            "UNION ALL BY NAME SELECT *, 1 AS _src, NULL::INTEGER AS _part, NULL::BIGINT AS _row "
            f"FROM _suspects) ORDER BY {ordered}, _src"
        ).to_arrow_table()
    beaten = pc.is_in(
        landed.column(RECORD_KEY), pc.filter(winners.column(RECORD_KEY), pc.equal(winners.column("_src"), 1))
    )
    removed = _remove_rows(fs, folder, landed.filter(beaten), write)
    added = winners.filter(pc.equal(winners.column("_src"), 1)).select([*columns, RECORD_KEY])
    if added.num_rows:
        write(parts, added)
    index.suspects, index.suspect_rows = [], 0
    return added.num_rows, removed


def _landed_copies(fs: pafs.FileSystem, folder: str, parts: int, keys: pa.Array) -> pa.Table:
    """The landed rows whose record key is one of ``keys``, with their part and row numbers (two parts
    read at a time: the Parquet reader releases the GIL)."""
    with ThreadPoolExecutor(2, thread_name_prefix="landing-settle") as pool:
        found = [
            t
            for t in pool.map(lambda part: _copies_in(fs, folder, part, keys), range(parts))
            if t is not None
        ]
    if found:
        return pa.concat_tables(found)
    schema = pq.read_schema(_part_path(folder, 0), filesystem=fs)
    return (
        schema.empty_table()
        .append_column("_part", pa.array([], pa.int32()))
        .append_column("_row", pa.array([], pa.int64()))
    )


def _copies_in(fs: pafs.FileSystem, folder: str, part: int, keys: pa.Array) -> pa.Table | None:
    """The rows of one part whose record key is one of ``keys`` (``None`` if none): its key column is
    read first, the other columns only when it holds one."""
    with fs.open_input_file(_part_path(folder, part)) as source:
        parquet = pq.ParquetFile(source)
        column = parquet.read(columns=[RECORD_KEY]).column(RECORD_KEY)
        rows = np.flatnonzero(pc.is_in(column, keys).to_numpy(zero_copy_only=False))
        if not len(rows):
            return None
        names = parquet.schema_arrow.names
        others = parquet.read(columns=[n for n in names if n != RECORD_KEY])
    table = others.append_column(RECORD_KEY, column).select(names).take(pa.array(rows))
    table = table.append_column("_part", pa.array(np.full(len(rows), part, np.int32)))
    return table.append_column("_row", pa.array(rows.astype(np.int64)))


def _remove_rows(fs: pafs.FileSystem, folder: str, beaten: pa.Table, write) -> int:
    """Rewrite each part that holds a beaten row, without it; returns the rows removed."""
    parts = beaten.column("_part").to_numpy()
    rows = beaten.column("_row").to_numpy()
    for part in np.unique(parts):
        table = pq.read_table(_part_path(folder, int(part)), filesystem=fs)
        keep = np.ones(table.num_rows, bool)
        keep[rows[parts == part]] = False
        write(int(part), table.filter(pa.array(keep)))
    return len(rows)


def _part_path(folder: str, part: int) -> str:
    return posixpath.join(folder, f"part-{part:05d}.parquet")
