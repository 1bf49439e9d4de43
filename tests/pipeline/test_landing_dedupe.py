"""The landing dedupe settles only the keys that repeat, and keeps exactly the row the old whole-log sort
kept: per record key, the smallest row over every column (NULLs last), whatever the batches and parts."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from islandbridge.connectors.base import Stream
from islandbridge.landing import dedupe
from islandbridge.landing.zone import LandingWriter, raw_schema

EVENTS = Stream("events", "eid", ("eid", "v", "w"), dedupe=True)


def batches(seed: int) -> list[pa.Table]:
    """Batches with repeats across batches and parts, identical and differing copies, NULLs, one key
    much longer than the others and keys of many lengths."""
    rng = random.Random(seed)
    ids = [f"k{i}" for i in range(300)] + ["long-" + "x" * 90, "", "événement"]
    out = []
    for _ in range(25):
        rows = []
        for _ in range(rng.randint(0, 40)):
            eid = rng.choice(ids)
            rows.append({"eid": eid, "v": rng.choice([None, "1", "2", eid]), "w": rng.choice([None, "a"])})
        table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in EVENTS.columns})
        keys = pa.array([f"events:{r['eid']}" for r in rows], pa.string())
        out.append(table.append_column("_record_key", keys).cast(raw_schema(EVENTS)))
    return out


def land(tmp_path, run: str, tables: list[pa.Table]) -> tuple[dict, list]:
    writer = LandingWriter.open(tmp_path.as_uri(), run, "src", [EVENTS], part_rows=37)
    for table in tables:
        writer.read("events", table.num_rows)
        writer.write_table("events", table)
    counts = writer.close({})["streams"]["events"]
    rows = duckdb.sql(
        f"SELECT * FROM read_parquet('{tmp_path / run / 'src' / 'events'}/*.parquet') ORDER BY ALL"
    ).fetchall()
    return counts, rows


def whole_log_sort(tables: list[pa.Table]) -> list:
    """What the landing kept before: DISTINCT ON the record key, ordered by every column."""
    everything = pa.concat_tables(tables)  # noqa: F841 - read by DuckDB by name
    return duckdb.sql(
        'SELECT * FROM (SELECT DISTINCT ON (_record_key) * FROM everything ORDER BY _record_key, "eid", '
        '"v", "w") ORDER BY ALL'
    ).fetchall()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_dedupe_keeps_what_the_whole_log_sort_kept(tmp_path, seed):
    tables = batches(seed)
    counts, rows = land(tmp_path, "r", tables)
    assert rows == whole_log_sort(tables)
    read = sum(t.num_rows for t in tables)
    assert counts["landed"] == len(rows) and counts["duplicates"] == read - len(rows)


def test_keys_whose_hashes_collide_are_all_kept(tmp_path, monkeypatch):
    """Every key hashing alike makes every row after the first a suspect; distinct keys still all land."""
    monkeypatch.setattr(dedupe, "key_hashes", lambda keys: np.zeros(len(keys), np.uint64))
    tables = batches(4)
    _, rows = land(tmp_path, "r", tables)
    assert rows == whole_log_sort(tables)


def test_equal_texts_hash_alike_whatever_the_rest_of_the_batch():
    texts = [f"events:{i:036d}" for i in range(50)]
    alone = dedupe.key_hashes(pa.array(texts))
    mixed = dedupe.key_hashes(pa.array(["x", *texts, "y" * 200]))
    assert (alone == mixed[1:-1]).all() and len(set(alone.tolist())) == 50


def test_the_key_index_keeps_the_first_row_of_each_hash_while_it_grows():
    """Hundreds of thousands of keys (runs merged many times), repeats within and across batches, and
    the hash 0: a row is kept exactly when its hash is new."""
    rng = np.random.default_rng(5)
    index, seen = dedupe.KeyIndex(), set()
    for n in range(60):
        hashes = rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64, endpoint=True)
        hashes[:500] = rng.integers(0, 4000, 500)  # hashes seen again in later batches
        hashes[500:700] = hashes[700:900]  # repeats within the batch
        if n == 7:
            hashes[:3] = 0
        table = pa.table({"_record_key": pa.array(range(len(hashes))).cast(pa.string())})
        kept = _admitted(index, table, hashes)
        expected = []
        for i, h in enumerate(hashes.tolist()):
            if h not in seen:
                seen.add(h)
                expected.append(i)
        assert kept == expected
    assert sum(len(run) for run in index.runs) == len(seen)


def _admitted(index: dedupe.KeyIndex, table: pa.Table, hashes: np.ndarray) -> list[int]:
    original = dedupe.key_hashes
    dedupe.key_hashes = lambda keys: hashes
    try:
        return [int(k) for k in index.admit(table).column("_record_key").to_pylist()]
    finally:
        dedupe.key_hashes = original


def test_a_part_the_writer_thread_cannot_write_fails_the_close_and_is_discarded(tmp_path, monkeypatch):
    from islandbridge.landing import zone

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zone, "write_part", broken)
    writer = LandingWriter.open(tmp_path.as_uri(), "r", "src", [EVENTS], part_rows=37)
    with pytest.raises(OSError, match="disk full"):  # raised by a later write, or by the close
        for table in batches(5):
            writer.read("events", table.num_rows)
            writer.write_table("events", table)
        writer.close({})
    writer.discard()
    assert not (tmp_path / "r").exists()
