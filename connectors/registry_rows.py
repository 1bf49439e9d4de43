"""Registry rows the incremental read would never see, or could not store: found, quarantined once.

The increment (``sql_registry.read_increment``) reads rows with ``watermark - overlap <= gxsj < as-of``,
ordered by ``(gxsj, key)``. A row falls outside that window, silently, when:

* a key column or ``gxsj`` is NULL (a keyset cannot order it);
* ``gxsj`` is not a ``YYYY-MM-DD HH:MM:SS`` text (SQLite is dynamically typed: an integer, ``2026-11-21T…``);
* ``gxsj`` is far in the future (a broken clock): it would wait for a later run forever;
* the row was committed after the watermark passed its ``gxsj`` (a late row stamped ``1970-01-01``).

``set_aside_scan`` reads the first three kinds with one bounded query per table and quarantines each row
once: the state keeps a digest of every row set aside, and a row still there unchanged next run is
counted as a duplicate of its quarantine row. ``late_rows`` finds the fourth kind with the deletion scan's
key list: a key new since the last run that the increment did not read is fetched and quarantined (its
key then belongs to the saved list, so it is reported once). Rows with text that is not valid UTF-8
(SQLite) are quarantined by ``row_problem`` naming the table and column.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from islandbridge.config import LOCAL_TZ
from islandbridge.connectors.base import Sink, Stream
from islandbridge.connectors.paging import FUTURE_SLACK, safe_text, storable
from islandbridge.errors import FatalSourceError, noun

CURSOR = "gxsj"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?")
# A SQLite text that looks like a registry time (checked in full by ``stamp_problem``).
SQLITE_STAMP_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*"
_IN_BATCH = 500


def stamp_problem(value: Any) -> str | None:
    """Why a landed ``gxsj`` is not a registry time, or ``None`` if it is one."""
    if isinstance(value, str) and _STAMP.fullmatch(value):
        try:
            dt.datetime.strptime(value[:19], TS_FORMAT)
            return None
        except ValueError:
            pass
    shown = safe_text(repr(value))[:40]
    if value is None:
        return "gxsj is NULL: the row cannot be read incrementally; the registry must stamp every edit"
    return f"gxsj {shown} is not a 'YYYY-MM-DD HH:MM:SS' time: the row cannot be placed in the increment"


def row_problem(stream: Stream, record: Mapping[str, Any]) -> str | None:
    """Why a normalised row cannot be landed: text that is not valid UTF-8, or a ``gxsj`` that is no time."""
    for column, value in record.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return (
                    f"{stream.name}.{column} holds bytes that are not valid UTF-8: the registry's text is "
                    "damaged; fix the row in the source"
                )
    if CURSOR in stream.columns:
        return stamp_problem(record.get(CURSOR))
    return None


def key_text(values: Sequence[Any]) -> str:
    """The key part of a record key (``100027:残疾人``), as ``Stream.record_key`` writes it."""
    return ":".join("NULL" if v is None else safe_text(str(v).strip()) for v in values)


def digest(record: Mapping[str, Any]) -> str:
    text = json.dumps(storable(record), ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def set_aside_predicate(stream: Stream, dialect: str, horizon: Any) -> Callable[[Any], Any]:
    """``WHERE`` of the rows the increment cannot read: NULL key or gxsj, gxsj no time, gxsj in the future."""

    def where(t: Any) -> Any:
        parts = [t.c[c].is_(None) for c in stream.key_columns]
        if CURSOR in stream.columns:
            g = t.c[CURSOR]
            parts += [g.is_(None), g >= horizon]
            if dialect == "sqlite":
                parts += [sa.func.typeof(g) != "text", sa.not_(g.op("GLOB")(SQLITE_STAMP_GLOB))]
        return sa.or_(*parts)

    return where


def readable_predicate(dialect: str) -> Callable[[Any], Any]:
    """``WHERE`` of rows whose gxsj is a registry-time text (SQLite); the complement of the scan's."""
    if dialect != "sqlite":
        return lambda t: sa.true()
    return lambda t: sa.and_(sa.func.typeof(t.c[CURSOR]) == "text", t.c[CURSOR].op("GLOB")(SQLITE_STAMP_GLOB))


def set_aside_scan(
    reader: Any,
    stream: Stream,
    old: Iterable[str],
    now: dt.datetime,
    sink: Sink,
    normalise: Callable[[Any, Stream, Any], dict[str, Any]],
) -> tuple[list[str], set[str]]:
    """Quarantine, once, the rows the increment never reads; return their digests and keys.

    One query of at most ``chunk_rows`` rows; more such rows than that is a ``FatalSourceError`` (the
    registry needs repair before a sync can account for every row).
    """
    horizon_text = (now + FUTURE_SLACK).astimezone(LOCAL_TZ).strftime(TS_FORMAT)
    horizon = reader.bind(horizon_text)
    where = set_aside_predicate(stream, reader.engine.dialect.name, horizon)
    limit = reader.opts.chunk_rows
    t = sa.table(stream.name, *[sa.column(c) for c in stream.columns])
    stmt = sa.select(*[t.c[c] for c in stream.columns]).where(where(t)).limit(limit)
    rows = reader.run(lambda conn: conn.execute(stmt).fetchall())
    if len(rows) >= limit:
        raise FatalSourceError(
            f"{reader.opts.safe_url}: table {stream.name} has {limit} or more rows with a NULL key or gxsj, "
            "or a gxsj that is no time or in the future; repair them in the registry before syncing"
        )
    before, now_digests, keys = set(old), [], set()
    for row in rows:
        record = normalise(reader, stream, row)
        mark = digest(record)
        key = key_text([record[c] for c in stream.key_columns])
        sink.read(stream.name)
        now_digests.append(mark)
        keys.add(key)
        if mark in before:
            sink.duplicate(stream.name)  # quarantined in an earlier run and unchanged since
            continue
        why = row_problem(stream, record) or _scan_reason(stream, record, horizon_text)
        sink.quarantine(stream.name, f"{stream.name}:{key}", why, storable(record))
    return sorted(set(now_digests)), keys


def _scan_reason(stream: Stream, record: Mapping[str, Any], horizon: str) -> str:
    nulls = [c for c in stream.key_columns if record.get(c) is None]
    if nulls:
        return f"key {noun(len(nulls), 'column')} {', '.join(nulls)} NULL: the row cannot be keyed or synced"
    return (
        f"gxsj {record.get(CURSOR)} is after {horizon} (a day past the clock): a broken clock; "
        "the row would wait for a later run forever"
    )


def late_rows(
    reader: Any,
    stream: Stream,
    missed: Sequence[str],
    low: str,
    sink: Sink,
    normalise: Callable[[Any, Stream, Any], dict[str, Any]],
) -> None:
    """Quarantine rows whose key is new since the last run but that the increment did not read.

    Only rows with a ``gxsj`` below the increment's lower bound ``low`` are late; a row committed since the
    increment with a newer ``gxsj`` is simply read next run. A row whose ``gxsj`` is shaped like a time but
    impossible (``2026-02-29 09:00:00``, ``0000-11-21 …``) escapes both the set-aside query and the
    increment's window: it is quarantined here with ``stamp_problem``'s reason.
    """
    t = sa.table(stream.name, *[sa.column(c) for c in stream.columns])
    cols = stream.key_columns
    for start in range(0, len(missed), _IN_BATCH):
        batch = [k.split(":", len(cols) - 1) for k in missed[start : start + _IN_BATCH]]
        match = sa.or_(
            *[
                sa.and_(*[sa.cast(t.c[c], sa.String) == v for c, v in zip(cols, k, strict=True)])
                for k in batch
            ]
        )
        stmt = sa.select(*[t.c[c] for c in stream.columns]).where(match)
        for row in reader.run(lambda conn, s=stmt: conn.execute(s).fetchall()):
            record = normalise(reader, stream, row)
            stamp = record.get(CURSOR)
            problem = stamp_problem(stamp)
            if problem is None and stamp[:19] >= low:
                continue  # committed since the increment with a newer gxsj: read next run
            sink.read(stream.name)
            sink.quarantine(
                stream.name,
                f"{stream.name}:{key_text([record[c] for c in cols])}",
                f"{problem}; the row appeared after the last sync and was never read by the increment"
                if problem
                else f"row appeared after the sync passed its gxsj {stamp[:19]} (it reads from {low}): "
                "committed late, or stamped by a wrong clock; it was never read by the increment. Fix its "
                "gxsj in the registry (any edit re-stamps it) or replay it",
                storable(record),
            )


DUPLICATE = "duplicate"  # ``one_per_key``: the very row already landed under its key in this run


def one_per_key(seen: dict[str, int], key: str, row: Sequence[Any], key_columns: Sequence[str]) -> str | None:
    """One key stands for one row: None for the first row under ``key`` in this run (noted in ``seen``),
    ``DUPLICATE`` for an exact copy of it (a table without its primary key may hold one row twice), else
    the reason to quarantine a conflicting row (other content or ``gxsj``) naming the key's columns."""
    content = hash(tuple(row))
    if key not in seen:
        seen[key] = content
        return None
    if seen[key] == content:
        return DUPLICATE
    return (
        f"another row with the same {', '.join(key_columns)} but different content or gxsj was read in "
        "this run: one key must stand for one row; the first row read was kept"
    )
