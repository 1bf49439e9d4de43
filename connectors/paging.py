"""Incremental lists read by version time, and the checks every item from a vendor's JSON must pass.

Both REST vendors page a list ordered by (version time, id) with an inclusive lower bound on the version
time, and move an edited record to the end of the list. ``keyset_items`` reads such a list so that an
edit during paging loses nothing; ``VersionedStream`` decides, item by item, whether to land, quarantine
or count it as a duplicate, so a re-run lands nothing twice and every item read is accounted for.

What a hostile or careless vendor can send, and what happens to it here:

* an item that is not a JSON object (``null``, a string) or that holds a lone surrogate (text that cannot
  be stored as UTF-8): quarantined with the reason (``item_problem``), its copy made storable;
* no id, or a version time that is not a time: quarantined;
* a version time far in the future (``9999-12-31``): such items sort after the run's as-of, so they are
  read in a pass of their own (``future_items``) and quarantined once; a re-sent identical copy in a later
  run is counted as a duplicate of that quarantine row (the state remembers it);
* the same id and version time with *different* content: quarantined (the vendor changed a record without
  moving its version time; we cannot tell which copy is current). Only a truly identical copy is counted
  as a duplicate;
* a page shorter than the page size while the answer's ``total`` says more items remain: the list ended
  early, ``RetriableError`` (never a silent success).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from islandbridge.connectors.base import Sink, Stream
from islandbridge.errors import FatalSourceError, RetriableError, count

#: How far past the wall clock a version time may be before it is a broken clock, not a late as-of.
FUTURE_SLACK = dt.timedelta(days=1)


# -- the items themselves -------------------------------------------------------------------------------


def item_problem(item: Any) -> str | None:
    """Why a JSON item cannot be landed as it is, or ``None``: not an object, or a lone surrogate inside."""
    if not isinstance(item, Mapping):
        return f"the item is {_json_kind(item)}, not a JSON object: the vendor broke the list's contract"
    where = _surrogate_at(item, "")
    if where is not None:
        return (
            f"field {safe_text(where) or '(a key)'} holds a lone surrogate (text that is not valid Unicode): "
            "it cannot be stored as UTF-8; ask the vendor to fix the record"
        )
    return None


def problem_free(items: list[Any], body: bytes) -> bool:
    """Whether ``item_problem`` finds nothing in any of ``items``, the list parsed from the JSON ``body``,
    told for a whole page at once: every item is an object and the body cannot hold a lone surrogate.

    A lone surrogate reaches a parsed text only through an escape ``\\uD800``..``\\uDFFF`` or the bytes
    ``ED A0``..``ED BF`` (which Python's JSON reader lets through), in a UTF-8 body (one without a NUL
    byte; a UTF-16 or UTF-32 body has NULs). ``False`` only means an item *may* have a problem (an escaped
    backslash before ``ud800`` looks like one): ask ``item_problem`` of each."""
    if b"\x00" in body or _SURROGATE_BYTES.search(body):
        return False
    return all(type(item) is dict for item in items)


_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def storable(item: Any) -> dict[str, Any]:
    """A copy of ``item`` fit for a quarantine row: a mapping, every text valid UTF-8 (surrogates escaped)."""
    if not isinstance(item, Mapping):
        return {"item": _escaped(item)}
    return {safe_text(str(k)): _escaped(v) for k, v in item.items()}


def safe_text(text: str) -> str:
    """``text`` with any lone surrogate written as ``\\udXXX``, so it can be encoded, logged and stored."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def fingerprint(record: Any) -> str:
    """A short digest of a record's content: tells an unchanged record from a changed one."""
    if type(record) is dict and all(type(k) is str for k in record) and all(map(_flat, record.values())):
        try:  # a flat record of valid text: `_escaped` would change nothing, so it is not walked
            data = json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
        except UnicodeEncodeError:  # a lone surrogate somewhere
            data = None
        if data is not None:
            return hashlib.sha256(data).hexdigest()[:16]
    text = json.dumps(_escaped(record), ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flat(value: Any) -> bool:
    return value is None or type(value) in _FLAT or type(value) is str


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, Mapping):
        return {safe_text(str(k)): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _surrogate_at(value: Any, path: str) -> str | None:
    """The path of the first text holding a lone surrogate (a key or a value), or ``None``.

    Flat values (numbers, null, valid text) are passed over without building their path: most items are
    flat and valid, and this runs for every item of every page."""
    if isinstance(value, str):
        return None if _encodes(value) else path
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and not _encodes(k):
                return f"{path}.{k}" if path else k
            if v is None or type(v) in _FLAT or (type(v) is str and _encodes(v)):
                continue
            inner = f"{path}.{k}" if path else str(k)
            if _surrogate_at(k, inner) is not None:
                return inner
            if (found := _surrogate_at(v, inner)) is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if (found := _surrogate_at(v, f"{path}[{i}]")) is not None:
                return found
    return None


_FLAT = (int, float, bool)


def _encodes(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate), i.e. can be written as UTF-8."""
    if text.isascii():  # a flag of the string: no scan, no copy
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_kind(item: Any) -> str:
    if item is None:
        return "null"
    if isinstance(item, bool):
        return "a boolean"
    if isinstance(item, (int, float)):
        return "a number"
    if isinstance(item, str):
        return "a string"
    if isinstance(item, list):
        return "a list"
    return type(item).__name__


# -- version-time lists ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionClock:
    """How a vendor writes the version time of a record: ``parse`` its text, ``render`` a query value."""

    parse: Callable[[Any], dt.datetime | None]
    render: Callable[[dt.datetime], str]


@dataclass(frozen=True)
class Page:
    """One page of a list: its items and the ``total`` the answer claims for the whole query."""

    items: list[Any]
    total: int


def page_total(value: Any, what: str) -> int:
    """The answer's ``total``: a non-negative integer, or the contract is broken (``FatalSourceError``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FatalSourceError(f"{what}: total is {value!r}, not a count; the API changed")
    return value


class VersionedStream:
    """Dedupe and watermark bookkeeping for one stream read by version time, inclusive (``>=``).

    ``state`` is what ``finish`` returned last time: the watermark (highest version landed), the
    ``[id, version, digest]`` of versions landed at, or within ``overlap_s`` before, it (``boundary``), and
    those quarantined there or in the future (``set_aside``). Within a run the newest version of an id is
    kept; an older one read earlier is counted as a duplicate (superseded), so a run lands at most one row
    per record key and every item read is landed, quarantined or counted.
    """

    def __init__(
        self, stream: Stream, field: str, clock: VersionClock, state: Mapping[str, Any], overlap_s: int = 0
    ) -> None:
        self.stream, self.field, self.clock, self.overlap_s = stream, field, clock, overlap_s
        self.watermark: str | None = state.get("watermark")
        # A state written before digests were kept has [id, version] marks: digest unknown (None).
        self.landed_before = {(str(m[0]), str(m[1])): (m[2] if len(m) > 2 else None) for m in _marks(state)}
        self.set_aside_before = {tuple(map(str, m)) for m in state.get("set_aside", []) if len(m) == 3}
        self.set_aside_now: set[tuple[str, str, str]] = set()
        self.latest: dict[str, tuple[dt.datetime, Mapping[str, Any], str]] = {}

    def since(self) -> str | None:
        """The lower bound of this run's request: the watermark, less the overlap."""
        moment = self.clock.parse(self.watermark) if self.watermark else None
        return self.clock.render(moment - dt.timedelta(seconds=self.overlap_s)) if moment else None

    def take(self, sink: Sink, item: Any, *, future: bool = False) -> None:
        """Count one item read and decide: quarantine, duplicate, or hold it as the newest version.

        ``future``: the item was read beyond the clock's horizon (see ``future_items``) and is set aside.
        """
        name = self.stream.name
        sink.read(name)
        problem = item_problem(item)
        if problem:
            key = str(item.get(self.stream.key) or "") if isinstance(item, Mapping) else ""
            sink.quarantine(name, self._record_key(key), problem, storable(item))
            return
        key, version = str(item.get(self.stream.key) or "").strip(), item.get(self.field)
        moment = self.clock.parse(version)
        if not key or moment is None:
            why = (
                f"{self.stream.key} is missing"
                if not key
                else f"{self.field} {version!r} is not a valid time"
            )
            sink.quarantine(name, self._record_key(key), why + ": cannot sync it", item)
            return
        mark, digest = (key, str(version)), fingerprint(item)
        if future:
            why = (
                f"{self.field} {version} is more than a day after the clock: a broken clock or a placeholder"
            )
            self._set_aside(sink, item, (*mark, digest), why)
            return
        if mark in self.landed_before:
            known = self.landed_before[mark]
            if known is None or known == digest:
                sink.duplicate(name)  # re-read at the inclusive boundary
            else:
                self._set_aside(
                    sink, item, (*mark, digest), _CONFLICT.format(field=self.field, when="a past run")
                )
            return
        held = self.latest.get(key)
        if held is not None and held[0] == moment and held[2] != digest:
            self._set_aside(sink, item, (*mark, digest), _CONFLICT.format(field=self.field, when="this run"))
            return
        if held is not None:
            sink.duplicate(name)  # the same copy re-read by the keyset, or one version superseded by another
            if held[0] >= moment:
                return
        self.latest[key] = (moment, item, digest)

    def finish(self, sink: Sink) -> dict[str, Any]:
        """Land the held records and return the next state."""
        sink.write(self.stream.name, (item for _, item, _ in self.latest.values()))
        versions = {(k, str(item[self.field])): (m, d) for k, (m, item, d) in self.latest.items()}
        for v, d in self.landed_before.items():
            if (m := self.clock.parse(v[1])) is not None:
                versions.setdefault(v, (m, d))
        set_aside = sorted(list(m) for m in self.set_aside_before | self.set_aside_now)
        if not versions:
            return {"watermark": self.watermark, "boundary": [], "set_aside": set_aside}
        top = max(versions, key=lambda v: versions[v][0])
        floor = versions[top][0] - dt.timedelta(seconds=self.overlap_s)
        boundary = sorted([k, t, d] if d else [k, t] for (k, t), (m, d) in versions.items() if m >= floor)
        kept = [m for m in set_aside if (when := self.clock.parse(m[1])) is None or when >= floor]
        return {"watermark": top[1], "boundary": boundary, "set_aside": kept}

    def _set_aside(self, sink: Sink, item: Mapping[str, Any], mark: tuple[str, str, str], why: str) -> None:
        """Quarantine once: a copy set aside in an earlier run (or earlier in this one) is a duplicate."""
        if mark in self.set_aside_before or mark in self.set_aside_now:
            sink.duplicate(self.stream.name)
            return
        self.set_aside_now.add(mark)
        sink.quarantine(self.stream.name, self._record_key(mark[0]), why, item)

    def _record_key(self, key: str) -> str:
        return f"{self.stream.key_prefix or self.stream.name}:{safe_text(key)}"


_CONFLICT = (
    "re-sent with the same id and {field} as a copy read in {when}, but with different content: the vendor "
    "changed the record without moving {field}, so which copy is current cannot be told"
)


def _marks(state: Mapping[str, Any]) -> list[list[Any]]:
    return [m for m in state.get("boundary", []) if isinstance(m, (list, tuple)) and len(m) >= 2]


def keyset_items(
    fetch: Callable[[str | None, int], Page],
    *,
    field: str,
    clock: VersionClock,
    since: str | None,
    until: dt.datetime,
    page_size: int,
    max_pages: int,
    what: str,
    beyond: list[dt.datetime] | None = None,
) -> Iterator[Any]:
    """Every item with ``since <= version <= until``, read keyset-style from ``fetch(lower_bound, page)``.

    Page numbers over a list whose edited records move to its end would skip records, so after each
    page we ask again from the last version seen, page 1 (``VersionedStream`` drops the re-read items).
    Only when a full page shares one version (the bound cannot advance) do we step to the next page.
    Items after ``until`` are left for the next run. Raises ``RetriableError`` after ``max_pages`` or when
    a page is short of the answer's ``total``, and ``FatalSourceError`` if the list is not ordered by
    version, which would make this unsafe, or if a page repeats the one before (the page parameter is
    ignored: paging would go on until ``max_pages``). Items that are not objects are yielded for the caller to
    quarantine. If the list goes on past ``until``, the first version after it is appended to ``beyond``.
    """
    bound, page, previous, before = since, 1, None, None
    for _ in range(max_pages):
        answer = fetch(bound, page)
        items = answer.items
        if page > 1 and items and items == before:
            raise FatalSourceError(
                f"{what}: page {page} holds the same {count(len(items), 'item')} as page {page - 1}: the API ignores "
                "the page parameter, so paging would never end; tell the vendor"
            )
        before = items
        for item in items:
            moment = clock.parse(item.get(field)) if isinstance(item, Mapping) else None
            if moment is not None and previous is not None and moment < previous:
                raise FatalSourceError(
                    f"{what}: the list is not ordered by {field}; incremental paging is unsafe"
                )
            if moment is not None and moment > until:
                if beyond is not None:
                    beyond.append(moment)
                return  # ordered: everything after this is beyond the as-of too
            previous = moment or previous
            yield item
        if len(items) < page_size:
            seen = (page - 1) * page_size + len(items)
            if seen < answer.total:
                raise RetriableError(
                    f"{what}: page {page} held {count(len(items), 'item')} but the answer's total is {answer.total}; "
                    f"the list ended {count(answer.total - seen, 'item')} early. Nothing of this run is kept; "
                    "run again later (if it recurs, the vendor's paging is broken)"
                )
            return
        last = clock.render(previous) if previous else bound
        bound, page = (bound, page + 1) if last == bound else (last, 1)
    raise RetriableError(
        f"{what}: still paging after {max_pages} pages (the list keeps changing); "
        "run again later or raise max_pages"
    )


def future_items(
    fetch: Callable[[str | None, int], Page],
    *,
    field: str,
    clock: VersionClock,
    now: dt.datetime,
    page_size: int,
    max_pages: int,
    what: str,
) -> Iterator[Any]:
    """Items whose version time is more than ``FUTURE_SLACK`` after ``now``: a broken clock.

    They sort after every run's as-of, so the main pass never reaches them; one more query from the
    horizon on reads them (usually an empty first page) so they can be quarantined, not silently skipped.
    """
    horizon = clock.render(now + FUTURE_SLACK)
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    pages = keyset_items(
        fetch,
        field=field,
        clock=clock,
        since=horizon,
        until=far,
        page_size=page_size,
        max_pages=max_pages,
        what=what,
    )
    for item in pages:
        moment = clock.parse(item.get(field)) if isinstance(item, Mapping) else None
        if moment is None or moment > now + FUTURE_SLACK:
            yield item


def sync_versioned(
    fetch: Callable[[str | None, int], Page],
    versions: VersionedStream,
    sink: Sink,
    *,
    until: dt.datetime,
    page_size: int,
    max_pages: int,
    what: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Read one version-time list from ``versions``' watermark to ``until``, land it, return its state.

    When the list goes on past ``until``, one more pass from ``now`` + ``FUTURE_SLACK`` quarantines the
    items whose version time is in the far future (each once; see ``VersionedStream``).
    """
    beyond: list[dt.datetime] = []
    common = {
        "field": versions.field,
        "clock": versions.clock,
        "page_size": page_size,
        "max_pages": max_pages,
    }
    for item in keyset_items(fetch, since=versions.since(), until=until, what=what, beyond=beyond, **common):
        versions.take(sink, item)
    now = now or dt.datetime.now(dt.UTC)
    if beyond and until < now + FUTURE_SLACK:
        for item in future_items(fetch, now=now, what=what + " (far-future versions)", **common):
            versions.take(sink, item, future=True)
    return versions.finish(sink)
