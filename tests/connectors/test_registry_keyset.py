"""The registry increment's pages on a table without an index on ``gxsj`` (the SQLite sample declares
none): each page must continue along an index, never scan and sort the whole table again, or the first
sync grows with the square of the table (issue #17). The rows landed and the state are the same."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from islandbridge.connectors.registry_keyset import increment_keyset
from islandbridge.connectors.sql_registry import window_settled
from tests.connectors.test_sql_registry import Registry, extract, open_registry

pytestmark = pytest.mark.timeout(120)

PAGED = ("t_fw", "t_jm")  # tables with a primary key: their pages can follow it


@pytest.fixture
def registry(request, street_dir, tmp_path) -> Registry:
    return open_registry("sqlite", request, street_dir, tmp_path)


def page_statements(
    registry: Registry, tmp_path: Path, as_of: dt.datetime | None = None, **options: Any
) -> list[tuple[str, Any]]:
    """The keyset-page SELECTs an extraction sends to ``PAGED`` tables (with their parameters)."""
    seen: list[tuple[str, Any]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if "ORDER BY" in statement and any(re.search(rf"FROM {t}\b", statement) for t in PAGED):
            seen.append((statement, parameters))

    sa.event.listen(sa.Engine, "before_cursor_execute", remember)
    try:
        extract(registry.url, tmp_path, **({"as_of": as_of} if as_of else {}), **options)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", remember)
    return seen


def plan(registry: Registry, statement: str, parameters: Any) -> str:
    database = registry.url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    db.close()
    return "\n".join(r[-1] for r in rows)


def test_no_page_sorts_the_whole_table_without_an_index_on_gxsj(registry: Registry, tmp_path: Path):
    statements = page_statements(registry, tmp_path, chunk_rows=40)
    assert len(statements) > 20
    for statement, parameters in statements:
        shown = plan(registry, statement, parameters)
        assert "USE TEMP B-TREE FOR ORDER BY" not in shown, (statement, shown)
        assert " INDEX " in shown, (statement, shown)  # a range of an index, never a scan


def test_an_index_on_gxsj_keeps_the_gxsj_order_and_the_rows_are_the_same(
    request, street_dir: Path, tmp_path: Path
):
    for name in ("bare", "indexed"):
        (tmp_path / name).mkdir()
    bare = open_registry("sqlite", request, street_dir, tmp_path / "bare")
    indexed = open_registry("sqlite", request, street_dir, tmp_path / "indexed")
    indexed.execute("CREATE INDEX ix_t_jm_gxsj ON t_jm (gxsj)")
    indexed.execute("CREATE INDEX ix_t_fw_gxsj ON t_fw (gxsj)")
    by_key = extract(bare.url, tmp_path / "bare", chunk_rows=40)
    by_gxsj = extract(indexed.url, tmp_path / "indexed", chunk_rows=40)
    for table in ("t_xq", *PAGED, "t_jm_bq"):
        assert sorted(by_key.rows[table], key=repr) == sorted(by_gxsj.rows[table], key=repr), table
    assert by_key.state == by_gxsj.state
    assert by_key.counts("read") == by_gxsj.counts("read")
    jm = by_gxsj.rows["t_jm"]
    assert [(r["gxsj"], int(r["jmid"])) for r in jm] == sorted((r["gxsj"], int(r["jmid"])) for r in jm)
    assert [int(r["jmid"]) for r in by_key.rows["t_jm"]] == sorted(int(r["jmid"]) for r in jm)


@pytest.mark.parametrize(
    ("key", "indexed", "keyset"),
    [
        (["jmid"], [(["jmid"], True), (["GXSJ", "jmid"], False)], ("gxsj", "jmid")),  # led by gxsj: its order
        (["jmid"], [(["jmid"], True)], ("jmid",)),  # the primary key alone: the pages follow it
        (["jmid", "bq"], [(["jmid", "bq", "gxsj"], True)], ("jmid", "bq")),
        (["jmid"], [([], True), (["jmid"], False)], ("gxsj", "jmid")),  # not unique: a key's copies unordered
        (["jmid", "bq"], [(["jmid"], True), ([None], False)], ("gxsj", "jmid", "bq")),  # part of the key
        (["jmid", "bq"], [], ("gxsj", "jmid", "bq")),  # no index at all: every order is a scan
    ],
)
def test_increment_keyset(key, indexed, keyset):
    assert increment_keyset("gxsj", key, indexed) == keyset


def test_a_window_not_yet_settled_is_read_in_gxsj_order(registry: Registry, tmp_path: Path):
    """An as-of later than the read (`sync --as-of` today, or a source clock behind ours): an edit made
    during a read by key could fall behind it and inside the window, and a later edit of a higher key
    would move the watermark past it for good. So such a window is read in (gxsj, key) order."""
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    window = re.compile(r"gxsj < \?")  # the increment's pages (the deletion scan reads by key anyway)
    statements = [s for s, _ in page_statements(registry, tmp_path, as_of=future, chunk_rows=40)]
    statements = [s for s in statements if window.search(s)]
    assert len(statements) > 5
    assert all(re.search(r"ORDER BY \S*gxsj", s) for s in statements), statements
    settled = [s for s, _ in page_statements(registry, tmp_path / "settled", chunk_rows=40)]
    settled = [s for s in settled if window.search(s)]
    assert len(settled) > 5
    assert not any(re.search(r"ORDER BY \S*gxsj", s) for s in settled), settled


def test_settled_means_the_window_closed_more_than_the_overlap_before_now():
    now = dt.datetime(2026, 12, 7, 1, tzinfo=dt.UTC)
    assert window_settled(now - dt.timedelta(seconds=301), now, 300)
    assert not window_settled(now - dt.timedelta(seconds=299), now, 300)
    assert not window_settled(dt.datetime(2026, 1, 1), now, 300)  # no zone: not judged settled
