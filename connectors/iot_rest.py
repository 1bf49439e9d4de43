"""The IoT platform (智慧社区物联网平台) behind door gates, meters and smoke detectors: REST API v1.

Three streams, each read the way its endpoint allows. The vendor's quirks and what this module does:

* ``/devices`` is the whole list every time. The state keeps a short fingerprint per device, so a re-run
  lands only devices that are new or changed (the others are counted as duplicates) and reports devices
  that vanished from the list as deletions.
* ``/cardholders`` pages by offset, ordered by ``(updated_at, holder_id)``, with an **inclusive**
  ``updated_since`` and edited holders moving to the end: read keyset-style with boundary dedupe, exactly
  like the grid platform (``connectors.paging``: far-future ``updated_at``, conflicting re-sends, items
  that are not objects, and pages short of ``total`` are handled the same way).
* ``/events`` is an arrival-ordered log read with an opaque cursor and delivered **at least once**. We
  follow the cursor from the state (none: the start of the 7-day retention) until ``has_more`` is false
  and return the new cursor *only* in the state ``extract`` returns: the loader commits it together with
  the landed data, so a crash re-reads from the old cursor and loses nothing. A repeated ``event_id``
  within a run is counted as a duplicate; across runs, the warehouse merges on ``event_id``. Pages are
  fetched ``prefetch`` ahead on a thread, and read column-wise by Arrow when that provably lands the
  same (``connectors.iot_events``), event by event otherwise.
  ``has_more`` must be a JSON boolean and, when true, ``next_cursor`` a new non-empty string: a cursor
  that repeats one already followed in this extraction (including the saved one it started from) is a
  cycle, and a ``FatalSourceError`` names it rather than following it for hours.
* Broken device clocks send ``ts`` = 0 or a time far off: events before 2000-01-01 or more than one day
  after ``ctx.as_of`` or, for a log read more than an hour after it, after the log's own arrival time (the
  running median ``ts`` of its pages, `connectors.iot_clock`; carried in the state as ``reference_ms``), or not a finite number
  (``1e20``, ``NaN``), are quarantined with the rule they broke. Late events (days late) are normal and
  landed; ``ctx.as_of`` does not cut the log, whose window is the cursor's: a backfill reading the log
  weeks after its as-of lands the events of the days after it (the marts count an event at its own ts).
* A wrong key is HTTP 403: ``FatalSourceError``. 429 with ``Retry-After`` and 503 with a JSON body are
  retried by ``connectors.http``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from islandbridge.config import Secret
from islandbridge.connectors.base import ExtractContext, Stream, declared_stream, register
from islandbridge.connectors.http import HttpClient, RestConnector, RestOptions, prefetched, sanitize_url
from islandbridge.connectors.iot_clock import (
    UTC_FORMAT,
    ArrivalReference,
    clock_bounds,
    clock_problem,
    read_late,
    utc_text,
)
from islandbridge.connectors.iot_events import EventPage, land_page, page_schema, plain_page, read_page
from islandbridge.connectors.options import option
from islandbridge.connectors.paging import (
    Page,
    VersionClock,
    VersionedStream,
    fingerprint,
    item_problem,
    page_total,
    problem_free,
    safe_text,
    storable,
    sync_versioned,
)
from islandbridge.errors import FatalSourceError

log = logging.getLogger(__name__)

API_PREFIX = "/iot/v1"
MAX_EVENT_LIMIT, MAX_HOLDER_LIMIT = 5000, 1000
_HEADER_SAFE = re.compile(r"[\x20-\x7e]+")

# Keys and columns as the raw schema declares them (schemas/raw_iot.yml); the event log repeats events.
STREAMS: tuple[Stream, ...] = (
    declared_stream("iot_rest", "devices"),
    declared_stream("iot_rest", "cardholders"),
    declared_stream("iot_rest", "events", dedupe=True),
)
DEVICES, HOLDERS, EVENTS = STREAMS


def _parse_utc(text: Any) -> dt.datetime | None:
    """The vendor's ``updated_at``: ISO 8601 in UTC (``2026-03-12T16:00:00Z``); ``None`` if it is not."""
    try:
        moment = dt.datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=dt.UTC)


UTC_CLOCK = VersionClock(_parse_utc, lambda moment: moment.astimezone(dt.UTC).strftime(UTC_FORMAT))


@dataclass(frozen=True)
class IotOptions(RestOptions):
    """The IoT platform's options (`IotRestConnector`)."""

    api_key: Secret | None = option(required=True)
    page_limit: int = option(MAX_EVENT_LIMIT, low=1, high=MAX_EVENT_LIMIT)
    holder_page: int = option(MAX_HOLDER_LIMIT, low=1, high=MAX_HOLDER_LIMIT)
    max_pages: int = option(100_000, low=1, high=10**7)
    prefetch: int = option(2, low=0, high=16)
    columnar: bool = option(True)


@register
class IotRestConnector(RestConnector):
    """Lands the IoT platform's devices, card holders and event log.

    Options: ``base_url``, ``api_key`` (a ``Secret``), ``page_limit`` (events per page, 1..5000, default
    5000), ``holder_page`` (1..1000, default 1000), ``overlap_s`` (card holders, default 0),
    ``max_pages`` (default 100000), ``prefetch`` (event pages fetched ahead, 0..16, default 2),
    ``columnar`` (default true) and the retry options of `connectors.http.RestOptions`.
    Tests may replace ``self.pacing`` to make retries instant.

    Example::

        iot = build_connector(SourceSettings("iot", "iot_rest", {"base_url": url, "api_key": secret}))
        state = iot.extract(ExtractContext(run_id, as_of, old_state, sink))  # state["events"]["cursor"]
    """

    kind = "iot_rest"
    system = "iot_platform"
    required_options = ("base_url", "api_key")

    options_class = IotOptions
    secret_option = "api_key"

    def configure(self, problems: list[str]) -> None:
        if self.secret is not None and not _HEADER_SAFE.fullmatch(self.secret.reveal()):
            problems.append(
                "api_key: holds characters an HTTP header cannot carry (CR, LF or other controls)"
            )
        self.page_limit, self.holder_page = self.opts.page_limit, self.opts.holder_page
        self.prefetch, self.columnar = self.opts.prefetch, self.opts.columnar

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    def extract(self, ctx: ExtractContext) -> Mapping[str, Any]:
        """Land devices, card holders since their watermark and events since the cursor; return the state.

        Raises ``FatalSourceError`` (key refused, contract broken) or ``RetriableError`` (budget spent).
        """
        headers = {"X-Api-Key": self.secret.reveal()}
        with HttpClient(
            self.base_url + API_PREFIX, self.policy, headers=headers, pacing=self.pacing
        ) as client:
            api = _IotApi(client)
            return {
                "devices": self._devices(api, ctx),
                "cardholders": self._holders(api, ctx),
                "events": self._events(api, ctx),
            }

    def _devices(self, api: _IotApi, ctx: ExtractContext) -> dict[str, Any]:
        """The whole device list; land what is new or changed since the fingerprints in the state."""
        before: Mapping[str, str] = (ctx.state.get("devices") or {}).get("fingerprints") or {}
        now: dict[str, str] = {}
        fresh = []
        for device in api.get("/devices", {}, "devices"):
            ctx.sink.read(DEVICES.name)
            if problem := item_problem(device):
                ctx.sink.quarantine(DEVICES.name, _key_of(DEVICES, device), problem, storable(device))
                continue
            key, print_ = str(device.get("device_id") or "").strip(), fingerprint(device)
            if not key:
                ctx.sink.quarantine(DEVICES.name, "devices:", "device_id is missing: cannot key it", device)
            elif key in now or before.get(key) == print_:
                ctx.sink.duplicate(DEVICES.name)  # listed twice, or unchanged since the last run
            else:
                fresh.append(device)
            if key:
                now.setdefault(key, print_)
        ctx.sink.write(DEVICES.name, fresh)
        ctx.sink.deleted(DEVICES.name, sorted(f"devices:{k}" for k in set(before) - set(now)))
        return {"fingerprints": dict(sorted(now.items()))}

    def _holders(self, api: _IotApi, ctx: ExtractContext) -> dict[str, Any]:
        """Card holders since the watermark, keyset-style, newest version of each landed once."""
        versions = VersionedStream(
            HOLDERS, "updated_at", UTC_CLOCK, ctx.state.get("cardholders") or {}, self.overlap_s
        )

        def fetch(since: str | None, page: int) -> Page:
            params: dict[str, Any] = {"offset": (page - 1) * self.holder_page, "limit": self.holder_page}
            if since:
                params["updated_since"] = since
            body = api.get_body("/cardholders", params)
            return Page(
                _list(body, "items", "/cardholders"), page_total(body.get("total"), "iot GET /cardholders")
            )

        return sync_versioned(
            fetch,
            versions,
            ctx.sink,
            until=ctx.as_of,
            page_size=self.holder_page,
            max_pages=self.max_pages,
            what="iot GET /cardholders",
        )

    def _events(self, api: _IotApi, ctx: ExtractContext) -> dict[str, Any]:
        """Follow the event log's cursor until it has no more; the cursor reached is the next state.

        Pages are fetched and parsed ``prefetch`` pages ahead, on a thread of their own
        (`connectors.http.prefetched`), while this thread lands the previous ones: column-wise
        (`connectors.iot_events`) when the page allows it, event by event (``_take_events``) otherwise.
        """
        saved = ctx.state.get("events") or {}
        cursor = saved.get("cursor")
        log.debug("iot events: resuming %s", "from the saved cursor" if cursor else "at the log's start")
        quarantined: set[str] = set()  # few: only broken-clock events; landed repeats are deduped on disk
        reached: dict[str, Any] = {"cursor": cursor}
        reference = ArrivalReference(saved.get("reference_ms"))
        with contextlib.closing(prefetched(self._event_pages(api, cursor, reached), self.prefetch)) as pages:
            for page in pages:
                if isinstance(page, EventPage):
                    ms = reference.observe_column(page.events.column("ts"))
                    bounds = clock_bounds(ctx.as_of, ms)
                    rule = functools.partial(clock_problem, reference_ms=ms)
                    if plain_page(page) and land_page(ctx, EVENTS, page, quarantined, bounds, rule):
                        continue
                    page, raw = _list(json.loads(page.body), "events", "/events"), page.body
                else:
                    page, raw = page
                    reference.observe(e.get("ts") for e in page if isinstance(e, Mapping))
                self._take_events(ctx, page, quarantined, problem_free(page, raw), reference.ms)
        _note_backfill(ctx.as_of, reference.ms)
        return {
            "cursor": reached["cursor"],
            **({} if reference.ms is None else {"reference_ms": reference.ms}),
        }

    def _event_pages(self, api: _IotApi, cursor: str | None, reached: dict[str, Any]) -> Iterator[Any]:
        """Each page of the log from ``cursor`` on: an ``EventPage`` when Arrow could read it, else the
        ``(events, body)`` Python read; the cursor to resume from is left in ``reached["cursor"]``.

        Raises ``FatalSourceError`` when the answer breaks the contract (``has_more`` not a boolean, a
        cursor that cannot be saved, does not move, or cycles)."""
        followed = {cursor}  # every cursor asked for in this extraction: one seen again is a cycle
        schema = page_schema(EVENTS)
        for page in range(1, self.max_pages + 1):
            params = {"limit": self.page_limit, **({"cursor": cursor} if cursor else {})}
            raw = api.get_raw("/events", params)
            fast = read_page(raw, schema) if self.columnar else None
            if fast is not None:
                has_more, next_cursor = fast.has_more, fast.next_cursor
            else:
                body = api.json_object(raw, "/events", params)
                events = _list(body, "events", "/events")
                has_more, next_cursor = body.get("has_more"), body.get("next_cursor")
            _check_page(page, has_more, next_cursor)
            yield fast if fast is not None else (events, raw)
            if not has_more:
                reached["cursor"] = next_cursor or cursor
                return
            if not next_cursor or next_cursor == cursor:
                raise FatalSourceError("iot GET /events: has_more is true but the cursor did not move")
            if next_cursor in followed:
                raise FatalSourceError(
                    f"iot GET /events: the cursor cycles: page {page} points back to a cursor already "
                    "followed in this extraction (or the saved one it started from) while has_more is "
                    "true; the platform's event log is broken, tell the vendor"
                )
            followed.add(next_cursor)
            cursor = reached["cursor"] = next_cursor
        log.warning(
            "iot events: stopped after %d pages; the next run resumes from the cursor", self.max_pages
        )

    @staticmethod
    def _take_events(
        ctx: ExtractContext,
        events: list[dict],
        quarantined: set[str],
        checked: bool = False,
        reference_ms: int | None = None,
    ) -> None:
        """Count each event read; land it, or quarantine a broken clock once, counting its repeats.

        The log delivers at least once: repeats of a landed event are removed by the landing writer
        (``EVENTS.dedupe``, `landing.dedupe`: 10–12 bytes of key hash and filter per event in memory, not the events).

        The common case is cheap: a page is counted as read at once; ``checked`` says the page was found
        free of items that are not objects or hold invalid Unicode (``paging.problem_free``), so no
        event is asked; and a ``ts`` that is a number within
        the clock bounds (computed once, relative to the page's ``reference_ms``, `connectors.iot_clock`) is
        believed without building a date; anything else goes to ``clock_problem``, which words the reason.
        """
        sink, stream = ctx.sink, EVENTS.name
        sink.read(stream, len(events))
        low, high = clock_bounds(ctx.as_of, reference_ms)
        good = []
        for event in events:
            if not checked and (problem := item_problem(event)):
                sink.quarantine(stream, _key_of(EVENTS, event), problem, storable(event))
                continue
            key = str(event.get("event_id") or "").strip()
            if key and key in quarantined:
                sink.duplicate(stream)
                continue
            ts = event.get("ts")
            if key and (type(ts) is int or type(ts) is float) and low <= ts <= high:
                good.append(event)  # NaN fails both comparisons; bool is not exactly int
                continue
            problem = (
                "event_id is missing: cannot key it"
                if not key
                else clock_problem(ts, ctx.as_of, reference_ms)
            )
            if problem:
                quarantined.add(key)
                sink.quarantine(stream, f"events:{key}", problem, event)
            else:
                good.append(event)
        sink.write(stream, good)


def _note_backfill(as_of: dt.datetime, reference_ms: int | None) -> None:
    """Say so when the log was read late (`iot_clock.read_late`: a backfill, or a first run set up late):
    its later events are landed, not taken for broken clocks."""
    if read_late(as_of, reference_ms):
        log.info(
            "iot events: the log read arrived until about %s, more than an hour after the as-of %s; "
            "events after the as-of are landed (reports of the as-of count only events up to it)",
            utc_text(reference_ms),
            as_of.astimezone(dt.UTC).strftime(UTC_FORMAT),
        )


def _check_page(page: int, has_more: Any, next_cursor: Any) -> None:
    """A page's ``has_more`` must be a JSON boolean and its ``next_cursor`` text that can be saved."""
    if not isinstance(has_more, bool):
        raise FatalSourceError(
            f"iot GET /events: has_more is {_shown(has_more)}, not a JSON boolean (page {page}); the "
            "API changed or is broken, and where the log ends cannot be told"
        )
    if next_cursor is not None and (
        not isinstance(next_cursor, str) or safe_text(next_cursor) != next_cursor
    ):
        raise FatalSourceError(
            f"iot GET /events: next_cursor is {_shown(next_cursor)}, not a string that can be saved"
        )


def _shown(value: Any) -> str:
    """A short, storable rendering of a vendor's value for an error message or a reason."""
    return safe_text(repr(value))[:60]


def _key_of(stream: Stream, item: Any) -> str:
    key = item.get(stream.key) if isinstance(item, Mapping) else None
    return f"{stream.key_prefix or stream.name}:{safe_text(str(key or ''))}"


class _IotApi:
    """GETs against the platform: a refused key is fatal, anything else but 200 breaks the contract."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    def get(self, path: str, params: Mapping[str, Any], field: str) -> list[dict]:
        return _list(self.get_body(path, params), field, path)

    def get_body(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.get_page(path, params)[0]

    def get_page(self, path: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The JSON object answered, and the bytes it was read from."""
        raw = self.get_raw(path, params)
        return self.json_object(raw, path, params), raw

    def get_raw(self, path: str, params: Mapping[str, Any]) -> bytes:
        """The body of a 200 answer; a refused key or any other status is a ``FatalSourceError``."""
        response = self.client.request("GET", path, params=params)
        if response.status_code in (401, 403):
            raise FatalSourceError(
                f"iot GET {self._where(path, params)}: HTTP {response.status_code}, the platform refused the "
                f"API key ({_error(response)}); check the source's api_key"
            )
        if response.status_code != 200:
            raise FatalSourceError(
                f"iot GET {self._where(path, params)}: HTTP {response.status_code} ({_error(response)})"
            )
        return response.content

    def json_object(self, raw: bytes, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``raw`` read by Python's JSON reader (as ``httpx.Response.json`` does): an object, or fatal."""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's stack
            body = None
        if not isinstance(body, dict):
            raise FatalSourceError(f"iot GET {self._where(path, params)}: HTTP 200 without a JSON object")
        return body

    def _where(self, path: str, params: Mapping[str, Any]) -> str:
        return sanitize_url(httpx.URL(self.client.base_url + path, params=params))


def _list(body: Mapping[str, Any], field: str, path: str) -> list[dict]:
    items = body.get(field)
    if not isinstance(items, list):
        raise FatalSourceError(f"iot GET {path}: the answer has no {field!r} list; the API changed")
    return items


def _error(response: httpx.Response) -> str:
    """The vendor's short error text (``{"error": "..."}``), never the whole body."""
    try:
        return str(response.json().get("error", ""))[:200]
    except (ValueError, AttributeError, RecursionError):
        return "no JSON error"
