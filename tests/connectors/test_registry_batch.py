"""The registry read in Arrow pages (``connectors.registry_batch``) decides exactly as row by row did.

Two kinds of proof: the column functions against the per-row functions they replace, on generated
values (texts, stripped keys, gxsj checks); and whole extractions of a SQLite registry full of hostile
rows, read in pages of 5 to 13 rows (so every bad row sits at a page boundary or mid-page somewhere),
compared with a row-by-row reference — the reading as it was before the columns — landed rows, quarantine
rows and reasons, manifests and state alike.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from islandbridge.config import LOCAL_TZ, SourceSettings, parse_as_of
from islandbridge.connectors import ExtractContext, build_connector, sql_registry
from islandbridge.connectors.paging import storable
from islandbridge.connectors.registry_batch import raw_value, stamp_checks, stripped, texts
from islandbridge.connectors.registry_rows import (
    CURSOR,
    key_text,
    readable_predicate,
    row_problem,
    stamp_problem,
)
from islandbridge.landing.zone import LandingWriter, text_column, to_text

pytestmark = pytest.mark.timeout(300)

# ----------------------------------------------------------------------------- the column functions

_EDGES = st.sampled_from([" ", "\t", "\u3000", "\x1c", "\x85", "\xa0", "\u2028", "", "", ""])
_TEXT = st.builds(lambda a, t, b: a + t + b, _EDGES, st.text(max_size=6), _EDGES)
_VALUES = st.one_of(
    st.none(),
    _TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.datetimes(
        min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
    ),
    st.dates(),
    st.binary(max_size=4),
)


def _landed(column, fixed: bool) -> list[Any]:
    text, _ = texts(column, fixed)
    return text.to_pylist() if isinstance(text, pa.Array) else text_column(list(text)).to_pylist()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.lists(_VALUES, max_size=6),  # mixed types: SQLite's dynamic typing
        st.lists(st.one_of(st.none(), _TEXT), max_size=6),
        st.lists(st.one_of(st.none(), st.integers(min_value=-(2**64), max_value=2**64)), max_size=6),
        st.lists(st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1, 1, 2))), max_size=6),
        st.lists(st.one_of(st.none(), st.dates()), max_size=6),
    ),
    st.booleans(),
)
def test_column_texts_are_the_texts_row_by_row_landed(column, fixed):
    """Arrow's text of a column is ``to_text(raw_value(v))`` of each value, whatever the types."""
    assert _landed(column, fixed) == [to_text(raw_value(v, fixed)) for v in column]


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXT.filter(lambda t: t.strip() != "" or True), max_size=8))
def test_stripped_is_python_strip(values):
    assert stripped(pa.array(values, pa.string())).to_pylist() == [v.strip() for v in values]


_DIGIT = st.sampled_from("0123456789")
_STAMPISH = st.builds(
    lambda y, mo, d, h, mi, s, frac, tail: f"{y}-{mo}-{d} {h}:{mi}:{s}{frac}{tail}",
    st.sampled_from(["2026", "0000", "0001", "1970", "9999", "２０２６", "202"]),
    st.sampled_from(["01", "02", "11", "12", "13", "00", "1"]),
    st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]),
    st.sampled_from(["00", "09", "23", "24", "99"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60", "61"]),
    st.sampled_from(["", ".1", ".123456", ".1234567", ".", ".١٢"]),
    st.sampled_from(["", "", " ", "\n", "Z", "+08"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_STAMPISH, st.text(max_size=22)), min_size=1, max_size=10))
def test_gxsj_checks_are_stamp_problem(values):
    """Every text: accepted exactly when ``stamp_problem`` accepts it, else its very reason."""
    ok, problems = stamp_checks(pa.array(values, pa.string()))
    for i, value in enumerate(values):
        assert ok[i].as_py() == (stamp_problem(value) is None), value
        assert problems.get(i) == stamp_problem(value), value


def test_aware_datetimes_land_as_local_time():
    moment = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
    assert _landed([moment, None], False) == [
        moment.astimezone(LOCAL_TZ).replace(tzinfo=None).isoformat(" "),
        None,
    ]


def test_decimals_and_floats_keep_their_own_text():
    assert _landed([Decimal("1.50"), Decimal("2")], False) == ["1.50", "2"]
    assert _landed([0.1, 1e20, None], False) == ["0.1", "1e+20", None]


# ----------------------------------------------------------------------------- whole extractions


def _legacy_read_increment(reader, stream, old, upper, overlap_s, sink, read_keys=None, *, settled=False):
    """The row-by-row reading of the increment as it was before the columns (the reference)."""
    normalise, mark_of = sql_registry.normalise, sql_registry.mark_of
    watermark = old.get("watermark")
    recent = {tuple(m) for m in old.get("recent", [])}
    marks: list[tuple[str, ...]] = []
    high = reader.bind(upper)
    where = [lambda t: t.c[CURSOR] < high, readable_predicate(reader.engine.dialect.name)]
    if watermark:
        low = reader.bind(sql_registry.shift(watermark, overlap_s))
        where.append(lambda t: t.c[CURSOR] >= low)
    order = reader.keyset(stream) if settled else (CURSOR, *stream.key_columns)
    for rows in reader.pages(stream.name, stream.columns, order, where):
        records = [normalise(reader, stream, row) for row in rows]
        sink.read(stream.name, len(records))
        fresh, repeats = [], 0
        for record in records:
            key = key_text([record[c] for c in stream.key_columns])
            if read_keys is not None:
                read_keys.add(key)
            if mark_of(stream, record) in recent:
                repeats += 1
            elif problem := row_problem(stream, record):
                sink.quarantine(stream.name, f"{stream.name}:{key}", problem, storable(record))
            else:
                fresh.append(record)
        sink.write(stream.name, fresh)
        sink.duplicate(stream.name, repeats)
        stamps = [r[CURSOR][:19] for r in records if not stamp_problem(r[CURSOR])]
        watermark = max([watermark or "", *stamps]) or None
        marks += [mark_of(stream, r) for r in records]
    floor = sql_registry.shift(watermark, overlap_s) if watermark else ""
    kept = sorted({m for m in (*recent, *marks) if m[0] >= floor})
    return {"watermark": watermark, "recent": [list(m) for m in kept]}


def _legacy_scan_deletions(reader, stream, before, sink):
    keys: set[str] = set()
    for rows in reader.pages(stream.name, stream.key_columns, stream.key_columns):
        keys.update(key_text(tuple(row)) for row in rows)
    if before is not None:
        sink.deleted(stream.name, [f"{stream.name}:{k}" for k in sorted(set(before) - keys)])
    return sorted(keys)


COPY = (
    "INSERT INTO t_jm SELECT {j}, xm, xb, sfzh, csrq, lxdh, mz, hjlx, fwbh, yhzgx, rzrq, zt, zxrq, cjsj, {g} "
    "FROM t_jm WHERE jmid = (SELECT MIN(jmid) FROM t_jm)"
)


def _hostile(con, day: str) -> None:
    """Rows every check must meet, several sharing one gxsj so that they fall mid-page and at its edges."""
    edits = [
        COPY.format(j="NULL", g=f"'{day} 08:00:00'"),
        COPY.format(j=990004, g="NULL"),
        COPY.format(j=990005, g="1763600000"),
        COPY.format(j=990006, g=f"'{day}T09:00:00'"),
        COPY.format(j=990007, g=f"'{day} 99:99:99'"),
        COPY.format(j=990010, g=f"'{day} 09:00:00 '"),
        COPY.format(j=990011, g=f"'{day} 09:00:00.1234567'"),
        COPY.format(j=990015, g=f"'{day} 09:00:00.5'"),
        COPY.format(j=990016, g=f"'{day} 09:00:00'"),
        COPY.format(j="' 990012 '", g=f"'{day} 09:00:00'"),
        COPY.format(j="'990013\u3000'", g=f"'{day} 09:00:00'"),
        COPY.format(j=990017, g=f"'{day} 09:00:00'"),
        "UPDATE t_jm SET xm = CAST(X'E5FF41' AS TEXT), gxsj = '{day} 09:00:00' "
        "WHERE jmid = (SELECT jmid FROM t_jm ORDER BY jmid LIMIT 1 OFFSET 5)",
        "UPDATE t_jm SET zt = 1.5, lxdh = 13800000000, csrq = NULL, gxsj = '{day} 09:00:00' "
        "WHERE jmid = (SELECT jmid FROM t_jm ORDER BY jmid LIMIT 1 OFFSET 6)",
        "UPDATE t_jm SET cjsj = X'00FF', xb = ' ', gxsj = '{day} 09:00:00' "
        "WHERE jmid = (SELECT jmid FROM t_jm ORDER BY jmid LIMIT 1 OFFSET 7)",
        "UPDATE t_jm_bq SET bq = CAST(X'E6FF' AS TEXT), gxsj = '{day} 09:00:00' "
        "WHERE rowid = (SELECT MIN(rowid) FROM t_jm_bq)",
        "UPDATE t_jm_bq SET bq = ' 残疾人 ', gxsj = '{day} 09:00:00' "
        "WHERE rowid = (SELECT MIN(rowid) + 1 FROM t_jm_bq)",
        "UPDATE t_fw SET gxsj = '{day} 09:00:00', ld = NULL WHERE fwbh IN (SELECT fwbh FROM t_fw LIMIT 9)",
        "DELETE FROM t_jm WHERE jmid = (SELECT MAX(jmid) FROM t_jm WHERE jmid < 990000)",
    ]
    for sql in edits:
        con.execute(sql.replace("{day}", day))
    con.commit()


def _runs(url: str, out: Path, chunk_rows: int, edit) -> list[str]:
    """Three runs (edits between the first two): each run's landed parts, quarantine, deleted and
    manifest as one JSON text, with the wall clock's horizon taken out of the far-future reason."""
    dumps, state = [], {}
    for n, as_of in enumerate(["2026-11-20", "2026-11-22", "2026-11-22"], start=1):
        if n == 2:
            edit()
        connector = build_connector(
            SourceSettings("registry", "sql_registry", {"url": url, "chunk_rows": chunk_rows})
        )
        writer = LandingWriter.open(out.as_uri(), f"run{n}", "registry", connector.streams(), part_rows=11)
        manifest = writer.close(
            connector.extract(ExtractContext(f"run{n}", parse_as_of(as_of), state, writer))
        )
        state = manifest["state"]
        base = out / f"run{n}" / "registry"
        landed = {
            d.name: [pq.read_table(p).to_pylist() for p in sorted(d.iterdir())]
            for d in sorted(base.iterdir())
            if d.is_dir()
        }
        dumps.append(json.dumps({"manifest": manifest, "landed": landed}, ensure_ascii=False, sort_keys=True))
    return dumps


@pytest.mark.parametrize("chunk_rows", [5, 6, 7, 13, 5000])
def test_pages_of_any_size_land_what_row_by_row_landed(street_dir, tmp_path, monkeypatch, chunk_rows):
    """Hostile rows mid-page and on page edges: identical landed rows, quarantine, manifest, state."""
    import sqlite3

    results = []
    for way in ("columns", "rows"):
        copy = tmp_path / f"{way}.sqlite"
        shutil.copy(street_dir / "registry" / "rrs.sqlite", copy)
        with sqlite3.connect(copy) as con:  # a small registry: every page size reads it whole quickly
            con.execute("DELETE FROM t_jm WHERE jmid NOT IN (SELECT jmid FROM t_jm ORDER BY jmid LIMIT 60)")
            con.execute("DELETE FROM t_fw WHERE fwbh NOT IN (SELECT fwbh FROM t_fw ORDER BY fwbh LIMIT 40)")
            con.execute("UPDATE t_jm SET gxsj = '2026-11-19 10:00:00' WHERE jmid % 3 = 0")  # ties
        con.close()

        def edit(copy=copy):
            with sqlite3.connect(copy) as con:
                _hostile(con, "2026-11-21")
            con.close()

        with monkeypatch.context() as patch:
            if way == "rows":
                patch.setattr(sql_registry, "read_increment", _legacy_read_increment)
                patch.setattr(sql_registry, "scan_deletions", _legacy_scan_deletions)
            results.append(_runs(f"sqlite:///{copy}", tmp_path / way, chunk_rows, edit))
    columns, rows = results
    for n, (a, b) in enumerate(zip(columns, rows, strict=True), start=1):
        assert _no_clock(a) == _no_clock(b), f"run {n}"
    second = json.loads(columns[1])["manifest"]["streams"]
    assert second["t_jm"]["quarantined"] >= 8 and second["t_jm_bq"]["quarantined"] == 1
    assert all(c["read"] == c["landed"] + c["quarantined"] + c["duplicates"] for c in second.values())


def _no_clock(text: str) -> str:
    import re

    return re.sub(r"is after \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "is after (the horizon)", text)


def test_landing_batches_make_the_parts_records_make(tmp_path):
    """``write_batch`` cuts parts where ``write`` cuts them, and converts list columns as ``write`` does."""
    stream = sql_registry.STREAMS[3]  # t_jm_bq: jmid, bq, gxsj
    records = [{"jmid": i, "bq": f"t{i}", "gxsj": None if i % 4 else 1.5} for i in range(23)]
    a = LandingWriter.open(tmp_path.as_uri(), "a", "registry", [stream], part_rows=5)
    a.write(stream.name, records[:9])
    a.write(stream.name, records[9:])
    b = LandingWriter.open(tmp_path.as_uri(), "b", "registry", [stream], part_rows=5)
    for start, stop in [(0, 3), (3, 4), (4, 16), (16, 23)]:
        rows = records[start:stop]
        b.write_batch(
            stream.name,
            {
                "jmid": pa.array([str(r["jmid"]) for r in rows]),
                "bq": [r["bq"] for r in rows],
                "gxsj": [r["gxsj"] for r in rows],
            },
            pa.array([stream.record_key(r) for r in rows], pa.string()),
        )
    for writer in (a, b):
        writer.read(stream.name, len(records))
        assert writer.close({})["streams"][stream.name]["parts"] == 5
    for part in range(5):
        name = f"{stream.name}/part-{part:05d}.parquet"
        assert pq.read_table(tmp_path / "a" / "registry" / name) == pq.read_table(
            tmp_path / "b" / "registry" / name
        )


def test_a_page_the_columns_cannot_decide_goes_row_by_row():
    """Keys of mixed types, or a gxsj that is no text (whose reason quotes its repr): every row is odd."""
    from islandbridge.connectors.registry_batch import read_page

    rows = [(1, "2026-11-20 10:00:00"), (2, 1763600000)]
    assert read_page(rows, ["jmid", "gxsj"], set(), ["gxsj", "jmid"], ["gxsj"]).odd == [0, 1]
    mixed = [(1, "2026-11-20 10:00:00"), (" 2 ", "2026-11-20 10:00:00")]
    assert read_page(mixed, ["jmid", "gxsj"], set(), ["gxsj", "jmid"], ["gxsj"]).odd == [0, 1]
    plain = [(1, "2026-11-20 10:00:00"), (2, "2026-11-20 10:00:01")]
    page = read_page(plain, ["jmid", "gxsj"], set(), ["gxsj", "jmid"], ["gxsj"])
    assert page.odd == [] and page.text("jmid").to_pylist() == ["1", "2"]
    broken = [(1, "ok"), (2, "bad \udce6")]  # SQLite text that is not UTF-8, mid-page
    page = read_page(broken, ["jmid", "xm"], set(), ["jmid"])
    assert page.odd == [1] and page.positions == [0] and page.text("xm").to_pylist() == ["ok"]
