"""The landing zone keeps every record it is given, and refuses to close when records went missing."""

from __future__ import annotations

import json

import duckdb
import pytest

from islandbridge.connectors.base import Stream
from islandbridge.landing.zone import AccountingError, LandingWriter, SchemaDriftError

PEOPLE = Stream("people", "pid", ("pid", "name", "id_number"), person_bearing=True)
TAGS = Stream("tags", ("pid", "tag"), ("pid", "tag"))


def _open(tmp_path, part_rows=50_000):
    return LandingWriter.open(tmp_path.as_uri(), "run1", "src", [PEOPLE, TAGS], part_rows=part_rows)


def _rows(path):
    return duckdb.sql(f"SELECT * FROM read_parquet('{path}/*.parquet') ORDER BY _record_key").fetchall()


def test_every_record_lands_across_bounded_parts(tmp_path):
    writer = _open(tmp_path, part_rows=2)
    writer.read("people", 5)
    writer.write("people", ({"pid": i, "name": None, "id_number": None} for i in range(5)))
    manifest = writer.close({"cursor": "c5"})
    assert manifest["streams"]["people"]["parts"] == 3
    assert len(_rows(tmp_path / "run1" / "src" / "people")) == 5
    assert manifest["state"] == {"cursor": "c5"}


def test_values_land_as_the_source_text_never_reinterpreted(tmp_path):
    writer = _open(tmp_path)
    writer.read("people")
    writer.write("people", [{"pid": 1, "name": "陈  佳", "id_number": 4.201021959100794e17}])
    writer.close({})
    [row] = _rows(tmp_path / "run1" / "src" / "people")
    assert row == ("1", "陈  佳", "4.201021959100794e+17", "people:1")


def test_compound_keys_join_with_colons(tmp_path):
    writer = _open(tmp_path)
    writer.read("tags")
    writer.write("tags", [{"pid": 7, "tag": "独居老人"}])
    writer.close({})
    assert _rows(tmp_path / "run1" / "src" / "tags")[0][-1] == "tags:7:独居老人"


def test_a_record_read_but_not_accounted_for_fails_the_close(tmp_path):
    writer = _open(tmp_path)
    writer.read("people", 3)
    writer.write("people", [{"pid": 1}])
    writer.duplicate("people")
    with pytest.raises(AccountingError, match="people: read 3, landed 1"):
        writer.close({})
    assert not (tmp_path / "run1" / "src" / "_manifest.json").exists()


def test_quarantined_records_keep_their_reason(tmp_path):
    writer = _open(tmp_path)
    writer.read("people", 2)
    writer.write("people", [{"pid": 1}])
    writer.quarantine("people", "people:2", "ts is 1970-01-01: broken clock", {"pid": 2})
    counts = writer.close({})["streams"]["people"]
    assert (counts["read"], counts["landed"], counts["quarantined"]) == (2, 1, 1)
    q = _rows(tmp_path / "run1" / "src" / "_quarantine")
    assert q == [("people", "people:2", "ts is 1970-01-01: broken clock", json.dumps({"pid": "2"}))]


def test_an_undeclared_field_is_schema_drift(tmp_path):
    writer = _open(tmp_path)
    with pytest.raises(SchemaDriftError, match="undeclared field wechat"):
        writer.write("people", [{"pid": 1, "wechat": "x"}])


def test_reopening_a_source_replaces_its_earlier_landing(tmp_path):
    first = _open(tmp_path)
    first.read("people", 2)
    first.write("people", [{"pid": 1}, {"pid": 2}])
    first.close({})
    second = _open(tmp_path)
    second.read("people")
    second.write("people", [{"pid": 3}])
    second.close({})
    assert [r[0] for r in _rows(tmp_path / "run1" / "src" / "people")] == ["3"]


def test_a_dedupe_stream_keeps_one_row_per_key_and_counts_the_rest(tmp_path):
    events = Stream("events", "eid", ("eid", "v"), dedupe=True)
    writer = LandingWriter.open(tmp_path.as_uri(), "run1", "src", [events], part_rows=2)
    rows = [{"eid": e, "v": "1"} for e in ("a", "b", "a", "c", "b", "a", "d")]
    writer.read("events", len(rows))
    writer.write("events", rows)
    counts = writer.close({})["streams"]["events"]
    assert (counts["read"], counts["landed"], counts["duplicates"]) == (7, 4, 3)
    assert counts["parts"] == len(list((tmp_path / "run1" / "src" / "events").glob("part-*.parquet")))
    landed = _rows(tmp_path / "run1" / "src" / "events")
    assert [r[0] for r in landed] == ["a", "b", "c", "d"]


def test_dedupe_picks_the_same_copy_whatever_the_arrival_order(tmp_path):
    events = Stream("events", "eid", ("eid", "v"), dedupe=True)
    results = []
    for order in (["x2", "x1"], ["x1", "x2"]):
        writer = LandingWriter.open(tmp_path.as_uri(), f"run-{order[0]}", "src", [events])
        writer.read("events", 2)
        writer.write("events", [{"eid": "x", "v": v} for v in order])
        writer.close({})
        results.append(_rows(tmp_path / f"run-{order[0]}" / "src" / "events"))
    assert results[0] == results[1] == [("x", "x1", "events:x")]


def test_a_mostly_unique_column_is_written_without_a_dictionary_and_lands_the_same(tmp_path):
    """From the first part of DICTIONARY_SAMPLE rows on, a column of mostly different values (here
    ``name``) is written plainly, one that repeats (``id_number``) and small parts keep the dictionary."""
    import pyarrow.parquet as pq

    from islandbridge.landing.zone import DICTIONARY_SAMPLE

    n = DICTIONARY_SAMPLE + 5
    records = [{"pid": i, "name": f"n{i * 7919 % n}", "id_number": f"x{i % 3}"} for i in range(n)]
    writer = _open(tmp_path, part_rows=DICTIONARY_SAMPLE)
    writer.read("people", n)
    writer.write("people", records)
    writer.close({})
    folder = tmp_path / "run1" / "src" / "people"

    def dictionary(part, column):
        meta = pq.ParquetFile(folder / f"part-{part:05d}.parquet").metadata.row_group(0)
        chunk = next(
            meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == column
        )
        return chunk.has_dictionary_page

    assert not dictionary(0, "name") and not dictionary(1, "name")
    assert dictionary(0, "id_number") and not dictionary(0, "_record_key")
    expected = sorted((str(r["pid"]), r["name"], r["id_number"], f"people:{r['pid']}") for r in records)
    assert sorted(_rows(folder)) == expected
