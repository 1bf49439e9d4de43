"""The simulated IoT platform (智慧社区物联网平台, REST API v1), SPEC section D.

Serves the generator's ``iot/`` folder under ``/iot/v1``: the device list, card holders paged by offset
in ``(updated_at, holder_id)`` order, and the event log read with an opaque cursor. The log is the
generator's ``events.jsonl`` in arrival order; it can hold millions of lines, so it is memory-mapped and
indexed by byte offsets once, and pages are cut from the raw lines without parsing them.

Example::

    with IotServer(street / "iot", api_key="k") as iot:
        page = httpx.get(f"{iot.base_url}/iot/v1/events", params={"limit": 500},
                         headers={"X-Api-Key": "k"}).json()
        # resume later with params={"cursor": page["next_cursor"]}
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import mmap
import struct
import threading
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from islandbridge.devtools.simulator.servers_common import (
    ParameterError,
    Request,
    Response,
    SimulatedServer,
    SortedTable,
    as_of,
    day_end,
    json_response,
    load_json_list,
    query_int,
    resolve_data_dir,
)

API_PREFIX = "/iot/v1"
MAX_CARDHOLDER_LIMIT = 1000
MAX_EVENT_LIMIT = 5000
DEFAULT_EVENT_LIMIT = 1000
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class EventLog:
    """The arrival-ordered event log: lines of ``events.jsonl`` (by byte span, never parsed) followed by
    events appended while the server runs. Thread-safe; ``open`` before use, ``close`` after.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | bytes = b""
        self._starts, self._ends = array("q"), array("q")
        self._appended: list[bytes] = []
        self._lock = threading.Lock()
        self.limit: int | None = None  # serve only the first ``limit`` lines of the file (a served day)

    def open(self) -> None:
        with open(self.path, "rb") as file:
            size = file.seek(0, 2)
            # mmap refuses empty files; an empty log is simply b"".
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._index()

    def _index(self) -> None:
        """One pass over the bytes recording where each non-empty line starts and ends."""
        data, starts, ends = self._map, array("q"), array("q")
        position, size = 0, len(data)
        while position < size:
            newline = data.find(b"\n", position)
            end = size if newline < 0 else newline
            stop = end - 1 if end > position and data[end - 1] == 0x0D else end  # tolerate CRLF
            if stop > position:
                starts.append(position)
                ends.append(stop)
            position = end + 1
        self._starts, self._ends = starts, ends

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        self._map, self._starts, self._ends = b"", array("q"), array("q")

    def _in_file(self) -> int:
        return len(self._starts) if self.limit is None else min(self.limit, len(self._starts))

    def __len__(self) -> int:
        with self._lock:
            return self._in_file() + len(self._appended)

    def first_line(self) -> bytes:
        return bytes(self._map[self._starts[0] : self._ends[0]]) if self._starts else b""

    def lines(self, start: int, stop: int) -> list[bytes]:
        """Raw JSON lines ``start..stop`` (clipped to the log)."""
        with self._lock:
            in_file = self._in_file()
            appended = self._appended[max(0, start - in_file) : max(0, stop - in_file)]
        raw = [self._map[self._starts[i] : self._ends[i]] for i in range(start, min(stop, in_file))]
        return raw + appended

    def append(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Add events at the end, as if they just arrived; returns the new length."""
        encoded = [json.dumps(dict(event), ensure_ascii=False).encode("utf-8") for event in events]
        with self._lock:
            self._appended.extend(encoded)
            return self._in_file() + len(self._appended)


class CursorCodec:
    """Opaque event-log cursors: a masked offset sealed with an HMAC, so a tampered cursor is detected.

    The key derives from the log's first line, so cursors survive a restart of the simulator on the
    same data (as a vendor's would) but not a regenerated street.
    """

    _POSITION = struct.Struct(">Q")
    _MAC_BYTES = 16  # 8 + 16 bytes = 32 base64 characters, no padding to fiddle with

    def __init__(self, log_identity: bytes) -> None:
        self._key = hashlib.sha256(b"islandbridge-simulator-iot-cursor\0" + log_identity).digest()
        # Masking the offset keeps clients from reading meaning into the cursor (it is opaque by contract).
        self._mask = int.from_bytes(self._key[-8:], "big")

    def encode(self, position: int) -> str:
        packed = self._POSITION.pack(position ^ self._mask)
        return base64.urlsafe_b64encode(packed + self._mac(packed)).decode("ascii")

    def decode(self, cursor: str) -> int:
        """The position a cursor points at; raises ``ValueError`` for anything this server did not issue."""
        try:
            raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise ValueError("cursor is not one this server issued") from None
        packed, mac = raw[: self._POSITION.size], raw[self._POSITION.size :]
        if len(raw) != self._POSITION.size + self._MAC_BYTES or not hmac.compare_digest(
            mac, self._mac(packed)
        ):
            raise ValueError("cursor is not one this server issued")
        return self._POSITION.unpack(packed)[0] ^ self._mask

    def _mac(self, packed: bytes) -> bytes:
        return hmac.new(self._key, packed, hashlib.sha256).digest()[: self._MAC_BYTES]


def _parse_utc(text: str) -> dt.datetime:
    """IoT times are ISO 8601 in UTC (``2026-03-12T16:00:00Z``); a zone-less one is taken as UTC."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _format_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(UTC_FORMAT)


class IotServer(SimulatedServer):
    """The IoT platform on loopback; a context manager that serves on enter and stops on exit.

    ``data_dir`` holds ``devices.json``, ``cardholders.json`` and ``events.jsonl`` (or is the street root
    holding ``iot/``). No rate limit unless ``rate_limit_per_s`` is given. Faults are JSON by default.
    """

    faults_are_html = False  # this vendor's 503 carries {"error": "service unavailable"}

    def __init__(
        self,
        data_dir: Path,
        *,
        api_key: str,
        rate_limit_per_s: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        day: dt.date | None = None,
    ) -> None:
        super().__init__(rate_limit_per_s=rate_limit_per_s, host=host, port=port)
        folder = resolve_data_dir(data_dir, "iot", ["devices.json", "cardholders.json", "events.jsonl"])
        self._api_key = api_key
        self._devices = load_json_list(folder / "devices.json")
        self._all_holders = load_json_list(folder / "cardholders.json")
        self._days_file = folder / "events_days.json"
        self._log = EventLog(folder / "events.jsonl")
        self._cursors = CursorCodec(b"")
        self.set_day(day)

    def set_day(self, day: dt.date | None) -> None:
        """Serve the platform as it was at the end of ``day`` (a living street, ``days.py``): card holders
        in their newest version by then, and the event log up to the last line that had arrived by then
        (``events_days.json``), so a cursor saved on one day resumes onto the next day's arrivals.
        ``ValueError`` for a day the street does not have."""
        holders = self._all_holders
        limit = None
        if day is not None:
            counts = (
                json.loads(self._days_file.read_text(encoding="utf-8")) if self._days_file.exists() else {}
            )
            if day.isoformat() not in counts:
                raise ValueError(
                    f"IoT simulator: no day {day} in {self._days_file} (days: {', '.join(counts)})"
                )
            limit = counts[day.isoformat()]
            holders = as_of(holders, "holder_id", "updated_at", _parse_utc, day_end(day))
        self.day = day
        self._holders = SortedTable(
            "cardholders",
            holders,
            id_field="holder_id",
            time_field="updated_at",
            parse=_parse_utc,
            fmt=_format_utc,
        )
        self._log.limit = limit

    def on_start(self) -> None:
        self._log.open()
        self._cursors = CursorCodec(self._log.first_line())

    def on_stop(self) -> None:
        self._log.close()

    # -- test controls ---------------------------------------------------------------------------
    def append_events(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Events that arrive now, at the end of the log: a saved cursor resumes onto them.
        Returns the log's new length."""
        return self._log.append(events)

    def edit_cardholder(self, holder_id: str, **changes: Any) -> dict:
        """Change one card holder; its ``updated_at`` becomes the latest plus one second (unless given)."""
        return self._holders.edit(holder_id, changes)

    # -- the API ---------------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        if not request.path.startswith(API_PREFIX + "/"):
            return self.error(404, f"no such endpoint: {request.path}")
        if not hmac.compare_digest(request.headers.get("x-api-key", "").encode(), self._api_key.encode()):
            return self.error(403, "forbidden: missing or invalid X-Api-Key")
        handler = {
            "devices": self._devices_list,
            "cardholders": self._cardholders,
            "events": self._events,
        }.get(request.path.removeprefix(API_PREFIX + "/"))
        if handler is None:
            return self.error(404, f"no such endpoint: {request.path}")
        if request.method != "GET":
            return self.error(405, "use GET")
        try:
            return handler(request.query)
        except ParameterError as exc:
            return self.error(400, str(exc))

    def error(self, status: int, message: str) -> Response:
        return json_response(status, {"error": message})

    def _devices_list(self, query: Mapping[str, str]) -> Response:
        return json_response(200, {"devices": self._devices})

    def _cardholders(self, query: Mapping[str, str]) -> Response:
        offset = query_int(query, "offset", 0)
        limit = query_int(query, "limit", MAX_CARDHOLDER_LIMIT)
        if offset < 0:
            raise ParameterError(f"offset must be >= 0, got {offset}")
        if not 1 <= limit <= MAX_CARDHOLDER_LIMIT:
            raise ParameterError(f"limit must be 1..{MAX_CARDHOLDER_LIMIT}, got {limit}")
        total, items = self._holders.page(_updated_since(query.get("updated_since")), offset, limit)
        return json_response(200, {"items": items, "offset": offset, "limit": limit, "total": total})

    def _events(self, query: Mapping[str, str]) -> Response:
        limit = query_int(query, "limit", DEFAULT_EVENT_LIMIT)
        if not 1 <= limit <= MAX_EVENT_LIMIT:
            raise ParameterError(f"limit must be 1..{MAX_EVENT_LIMIT}, got {limit}")
        start = self._cursor_position(query.get("cursor"))
        lines = self._log.lines(start, start + limit)
        end = start + len(lines)
        tail = {"next_cursor": self._cursors.encode(end), "has_more": end < len(self._log)}
        # The log's lines are JSON already: splice them in rather than parse and re-serialise them.
        body = b'{"events":[' + b",".join(lines) + b"]," + json.dumps(tail).encode()[1:]
        return Response(200, body)

    def _cursor_position(self, cursor: str | None) -> int:
        if not cursor:
            return 0  # no cursor: the start of the retained log
        try:
            position = self._cursors.decode(cursor)
        except ValueError as exc:
            raise ParameterError(
                f"invalid cursor: {exc}; start without a cursor or use a next_cursor"
            ) from None
        if position > len(self._log):
            raise ParameterError("invalid cursor: it points past the end of the event log")
        return position


def _updated_since(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        # A '+' left unencoded in the query arrives as a space, which is the usual cause here.
        raise ParameterError(
            f"updated_since must be ISO 8601 with a zone, e.g. 2026-11-01T00:00:00Z "
            f"(encode '+' as %2B), got {text!r}"
        )
    return moment
