"""Keyset paging helpers of the SQL registry (``sql_registry.PageReader``): the ``>`` bound written
portably, values bound back as the driver can send them, and the loose comparison that ends a page before
a group of rows tied on the keyset (a table without its primary key may hold one row twice)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .paging import safe_text

TIE_ROWS_FACTOR = 10  # rows sharing one keyset value read at once, in pages (``_end_between_ties``)


def loose(row: sa.Row, order: Sequence[str]) -> tuple[Any, ...]:
    """A row's keyset value as a lenient collation compares it: text case-folded, without accents or
    trailing spaces. Only used to end a page early, so an over-broad match costs nothing but a page."""
    return tuple(_loose_value(row._mapping[c]) for c in order)


def _loose_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    decomposed = unicodedata.normalize("NFKD", value.casefold().rstrip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def bindable(value: Any) -> Any:
    """A keyset bound as the driver can send it: SQLite text read with surrogates (bytes that are not
    UTF-8) goes back as those very bytes, cast to text, so the page after it starts in the right place."""
    if isinstance(value, str) and safe_text(value) != value:
        return sa.cast(sa.literal(value.encode("utf-8", "surrogateescape"), sa.LargeBinary), sa.Text)
    return value


def keyset_after(columns: Sequence[sa.ColumnElement[Any]], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``(c1, c2, …) > (v1, v2, …)`` written portably: ``c1 > v1 OR (c1 = v1 AND (c2, …) > (v2, …))``,
    and ``c1 >= v1`` beside it — implied, but it lets every engine start the page's index scan at ``v1``
    instead of filtering the whole index from its start (pages would grow slower with the table)."""
    if len(columns) == 1:
        return columns[0] > values[0]
    return sa.and_(columns[0] >= values[0], _after(columns, values))


def _after(columns: Sequence[sa.ColumnElement[Any]], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    head = columns[0] > values[0]
    if len(columns) == 1:
        return head
    return sa.or_(head, sa.and_(columns[0] == values[0], _after(columns[1:], values[1:])))


def increment_keyset(
    cursor: str, key: Sequence[str], indexed: Sequence[tuple[Sequence[str | None], bool]]
) -> tuple[str, ...]:
    """The keyset of a settled increment's pages on a table whose primary key and indexes lead with the
    columns in ``indexed`` (each with whether it is unique).

    ``(gxsj, key…)`` when an index leads with ``gxsj``: each page is then a short range of it. On a table
    without one (the SQLite sample declares none), every page ordered by ``gxsj`` would be a scan and a
    sort of the whole table, and the first sync's time would grow with the square of the table. So there
    the pages follow the key alone when the primary key or a *unique* index leads with it: each page reads
    on from the previous page's end, and no two rows share a key (a non-unique one would let the database
    return a key's copies in any order, and which copy lands would change between runs). The window
    (``gxsj`` from the watermark to the as-of) and so the rows landed are the same; they land in key
    order. A table with neither (``t_jm_bq``) keeps ``(gxsj, key…)``: any order is a scan there.

    Only for a settled window (`read_increment`): an edit during a read by key can fall behind the read
    and inside the window, which a read in ``gxsj`` order never leaves behind."""
    leads = [(tuple((c or "").lower() for c in columns), unique) for columns, unique in indexed]
    if any(lead[:1] == (cursor.lower(),) for lead, _ in leads):
        return (cursor, *key)
    if any(unique and lead[: len(key)] == tuple(c.lower() for c in key) for lead, unique in leads):
        return tuple(key)
    return (cursor, *key)
