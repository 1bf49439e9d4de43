"""The IoT event log's pages, columnar: parsed by Arrow from the page bytes, checked and landed as batches.

`connectors.iot_rest` reads the log a page at a time. The common page — objects of the declared fields,
each of the JSON type the vendor documents — is parsed by ``pyarrow.json`` straight from the answer's
bytes (in C++, without the GIL: it runs on the prefetching thread), and its events are checked and
turned into the landing zone's text columns with Arrow kernels. No Python object is made per event.

The careful path (``IotRestConnector._take_events``: Python's JSON, each event asked ``item_problem`` and
``clock_problem``, each cell through ``to_text``) stays the definition of what is landed. This module
only takes a page that it can *prove* lands the same; anything else returns ``None`` and the page goes
the careful way (`parse_page`):

* the body must hold no backslash (no escapes: a lone surrogate is one), no NUL (UTF-16/32), no surrogate
  bytes, and be valid UTF-8 — Arrow would take invalid bytes that Python's JSON reader refuses;
* Arrow must parse it against the declared fields and types (``event_id``, ``device_id``, ``type``,
  ``holder_id``, ``alarm_code`` text or null; ``ts`` an integer token that fits 64 bits; ``value`` a number
  or null), refusing unknown fields, repeated keys, ``null`` items, and a second JSON document;
* every ``event_id`` must begin and end with a visible ASCII character (so Python's ``strip`` is a no-op);
* ``value`` must not hold an integer token (Python keeps ``3`` an int and lands ``"3"``; Arrow reads it as
  ``3.0``): looked for in the bytes only when some value is integral.

Within such a page, `land_page` repeats the careful path's decisions column-wise: a ``ts`` within the
clock bounds lands; any other ``ts`` is worded by ``clock_problem`` and quarantined with the event as
Python reads it (its object is cut from the bytes by its ``event_id`` and parsed, and must agree with
Arrow's row, or the page goes the careful way); a key quarantined earlier makes its repeats duplicates.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from islandbridge.connectors.base import ExtractContext, Stream
from islandbridge.schemas import RECORD_KEY

#: The JSON types Arrow is told to expect; a column not named here is text (or null).
_TYPES = {"ts": pa.int64(), "value": pa.float64()}
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")
#: An integer token as ``value``: its digits end before anything but a digit, ``.``, ``e`` or ``E`` (in a
#: body Arrow parsed, a token is always followed by something, and whitespace is JSON's four kinds).
_INT_VALUE = r'"value"\s*:\s*-?\d+[^\d.eE]'
#: Where Arrow writes a float64 with the digits and notation of Python's ``repr`` (but for the ``.0`` an
#: integral value gets): 1e-4 <= |v| < 1e10, and zero. Other values are written by ``repr`` one by one.
_FAST_FLOAT = (1e-4, 1e10)


@dataclass(frozen=True)
class EventPage:
    """One page of the log parsed by Arrow: its events (one typed column per declared field, in the
    stream's order), the answer's ``has_more`` and ``next_cursor``, and the bytes it was read from."""

    events: pa.Table
    has_more: bool
    next_cursor: str | None
    body: bytes


def page_schema(stream: Stream) -> pa.Schema:
    """The answer's shape as Arrow is told to read it (``{"events": [...], "next_cursor", "has_more"}``)."""
    event = pa.struct([(c, _TYPES.get(c, pa.string())) for c in stream.columns])
    return pa.schema([("events", pa.list_(event)), ("next_cursor", pa.string()), ("has_more", pa.bool_())])


def parse_page(body: bytes, schema: pa.Schema) -> EventPage | None:
    """The page read column-wise, or ``None`` when it must go the careful way (see the module docstring):
    `read_page`, then `plain_page`.

    ``None`` says nothing about whether the page is valid: the careful path decides that (and raises)."""
    page = read_page(body, schema)
    return page if page is not None and plain_page(page) else None


def read_page(body: bytes, schema: pa.Schema) -> EventPage | None:
    """The page as Arrow reads it against ``schema``, or ``None`` (the careful way); its events must then
    pass `plain_page`. The prefetching thread calls this (the parse releases the GIL), the landing
    thread `plain_page`: the two share the work."""
    if b"\\" in body or b"\x00" in body or (b"\xed" in body and _SURROGATE_BYTES.search(body)):
        return None  # `in` is a memchr; a regex alternation would walk every byte
    try:
        if not body.isascii():  # ASCII is valid UTF-8, and telling is a scan that makes no text
            body.decode("utf-8")
        table = pajson.read_json(
            io.BytesIO(body),
            read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(body) + 1, 1 << 20)),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
        )
    except (UnicodeDecodeError, pa.ArrowException):
        return None
    if table.num_rows != 1 or table.schema != schema:
        return None
    lists, has_more = table.column("events").chunk(0), table.column("has_more")[0].as_py()
    if lists.null_count or has_more is None:
        return None
    events = lists.values if lists.offset == 0 else lists.flatten()
    if events.null_count:  # a null item: the careful path quarantines it
        return None
    names = [f.name for f in events.type]
    page = pa.Table.from_arrays(events.flatten(), names=names)
    return EventPage(page, has_more, table.column("next_cursor")[0].as_py(), body)


def plain_page(page: EventPage) -> bool:
    """Whether every ``event_id`` of a page `read_page` read is free of surrounding whitespace and no
    ``value`` was an integer token: what else the careful path would land differently."""
    return _plain_ids(page.events.column("event_id")) and not _int_values(
        page.events.column("value"), page.body
    )


def _plain_ids(ids: pa.ChunkedArray) -> bool:
    """Every ``event_id`` present and free of surrounding whitespace: it begins and ends with a byte
    ``!``..``~`` (the body holds no control character: JSON forbids them in a text)."""
    ids = ids.combine_chunks()
    if ids.null_count:
        return False
    offsets = np.frombuffer(ids.buffers()[1], np.int32, len(ids) + 1, ids.offset * 4)
    if not len(ids):
        return True
    if (np.diff(offsets) <= 0).any():
        return False
    data = np.frombuffer(ids.buffers()[2], np.uint8)
    edges = np.concatenate([data[offsets[:-1]], data[offsets[1:] - 1]])
    return bool(((edges >= 0x21) & (edges <= 0x7E)).all())


def _int_values(values: pa.ChunkedArray, body: bytes) -> bool:
    """Whether a ``value`` may have been an integer token (looked for in the page's ``body``, valid UTF-8,
    by RE2 without the GIL): only an integral double can be one."""
    finite = pc.is_finite(values)
    integral = pc.and_(finite, pc.equal(values, pc.floor(values)))
    if not pc.any(integral).as_py():
        return False
    text = pa.Array.from_buffers(  # the body as one Arrow text, without a copy
        pa.string(), 1, [None, pa.py_buffer(np.array([0, len(body)], np.int32)), pa.py_buffer(body)]
    )
    return bool(pc.match_substring_regex(text, _INT_VALUE)[0].as_py())


def land_page(
    ctx: ExtractContext,
    stream: Stream,
    page: EventPage,
    quarantined: set[str],
    bounds: tuple[float, float],
    clock_problem: Callable[[Any, dt.datetime], str | None],
) -> bool:
    """Count, check and land one Arrow-parsed page as the careful path would; ``False`` (nothing done)
    when an event to be quarantined cannot be cut from the bytes as Python reads it."""
    events, sink = page.events, ctx.sink
    ids, ts = events.column("event_id"), events.column("ts")
    low, high = _whole(bounds[0], math.ceil), _whole(bounds[1], math.floor)  # the same tests for an int ts
    good = pc.fill_null(pc.and_(pc.greater_equal(ts, low), pc.less_equal(ts, high)), False)
    broken = pc.invert(good)
    watch = quarantined | set(pc.filter(ids, broken).to_pylist())
    take = good
    decisions: list[tuple[int, str, str | None, dict | None]] = []
    if watch:
        entangled = pc.is_in(ids, pa.array(sorted(watch), pa.string()))
        rows = np.flatnonzero(entangled.to_numpy(zero_copy_only=False))
        decisions = _decide(page, rows, quarantined, good, ctx.as_of, clock_problem)
        if decisions is None:
            return False
        landed = np.zeros(len(events), bool)
        landed[[i for i, verdict, _, _ in decisions if verdict == "land"]] = True
        take = pc.or_(pc.and_(good, pc.invert(entangled)), pa.array(landed))
    sink.read(stream.name, len(events))
    for _, verdict, problem, record in decisions:
        if verdict == "duplicate":
            sink.duplicate(stream.name)
        elif verdict == "quarantine":
            quarantined.add(record["event_id"])
            sink.quarantine(
                stream.name, f"{stream.key_prefix or stream.name}:{record['event_id']}", problem, record
            )
    kept = events if pc.all(take).as_py() else events.filter(take)  # most pages: all of it, no copy
    sink.write_table(stream.name, landed_text(stream, kept))
    return True


def _whole(bound: float, rounding: Callable[[float], int]) -> int:
    """The integer bound an integer ``ts`` meets exactly when it meets ``bound`` (clamped to 64 bits)."""
    if math.isnan(bound):
        raise ValueError("a clock bound cannot be NaN")
    whole = rounding(bound) if math.isfinite(bound) else (2**63 - 1 if bound > 0 else -(2**63))
    return min(max(whole, -(2**63)), 2**63 - 1)


def _decide(page, rows, quarantined, good, as_of, clock_problem):
    """The careful path's verdict, in order, for the few events whose key is (or becomes) quarantined:
    ``[(row, "land" | "duplicate" | "quarantine", reason, record)]``, or ``None`` if a record cannot be cut."""
    ids = page.events.column("event_id")
    keys = ids.take(pa.array(rows, pa.int64())).to_pylist()
    aside, verdicts = set(quarantined), []
    for i, key in zip(rows.tolist(), keys, strict=True):
        if key in aside:
            verdicts.append((i, "duplicate", None, None))
        elif good[i].as_py():
            verdicts.append((i, "land", None, None))
        else:
            # The n-th event of a key on the page is the n-th object holding that event_id in the bytes.
            nth = pc.sum(pc.equal(ids.slice(0, i), key)).as_py() or 0
            record = event_record(page, i, nth)
            if record is None:
                return None
            problem = clock_problem(record.get("ts"), as_of)
            if problem is None:  # ts failed the bounds, so cannot be; the careful rule stays the rule
                verdicts.append((i, "land", None, None))
                continue
            aside.add(key)
            verdicts.append((i, "quarantine", problem, record))
    return verdicts


def event_record(page: EventPage, row: int, nth: int) -> dict[str, Any] | None:
    """Event ``row`` as Python's JSON reader reads it (which fields it has matters to its quarantine row):
    the ``nth`` object with its ``event_id`` cut from the bytes and parsed; ``None`` unless it agrees with
    Arrow's row field by field. The body has no backslash, so every text is written as it is."""
    expected = {c: page.events.column(c)[row].as_py() for c in page.events.column_names}
    quoted = json.dumps(expected["event_id"], ensure_ascii=False).encode("utf-8")
    found, at = -1, 0
    for _ in range(nth + 1):
        found, at = _next_key(page.body, quoted, at)
        if found < 0:
            return None
    start, end = page.body.rfind(b"{", 0, found), page.body.find(b"}", found)
    try:
        record = json.loads(page.body[start : end + 1]) if start >= 0 and end >= 0 else None
    except ValueError:
        return None
    if not isinstance(record, dict) or any(not _same(record.get(c), v) for c, v in expected.items()):
        return None
    return record


def _next_key(body: bytes, quoted: bytes, at: int) -> tuple[int, int]:
    """Where the next ``"event_id": <quoted>`` starts at or after ``at``, and where to look after it."""
    while (hit := body.find(quoted, at)) >= 0:
        if _KEY_BEFORE.search(body, max(0, hit - 64), hit):
            return hit, hit + len(quoted)
        at = hit + 1
    return -1, len(body)


_KEY_BEFORE = re.compile(rb'"event_id"\s*:\s*\Z')


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def landed_text(stream: Stream, events: pa.Table) -> pa.Table:
    """The landing zone's columns for Arrow-parsed events: each field as ``to_text`` writes it, and the
    record key (``events:<event_id>``; the ids are already free of surrounding whitespace)."""
    columns = {}
    for name in stream.columns:
        column = events.column(name)
        columns[name] = float_text(column) if name == "value" else column.cast(pa.string())
    prefix = pa.scalar(f"{stream.key_prefix or stream.name}:", pa.string())
    columns[RECORD_KEY] = pc.binary_join_element_wise(prefix, events.column(stream.key), "")
    return pa.table(columns)


def float_text(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``repr`` of each float64 (``None`` for null), with Arrow where it writes the same text."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    text = values.cast(pa.string())
    magnitude = pc.abs(values)
    fast = pc.or_(
        pc.equal(values, 0.0),
        pc.and_(pc.greater_equal(magnitude, _FAST_FLOAT[0]), pc.less(magnitude, _FAST_FLOAT[1])),
    )
    integral = pc.and_(fast, pc.equal(values, pc.floor(values)))
    text = pc.if_else(integral, pc.binary_join_element_wise(text, ".0", ""), text)
    slow = pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(fast, False)))
    if pc.any(slow).as_py():
        at = np.flatnonzero(slow.to_numpy(zero_copy_only=False))
        shown = [repr(v) for v in values.take(pa.array(at)).to_pylist()]
        text = pc.replace_with_mask(text, slow, pa.array(shown, pa.string()))
    return text
