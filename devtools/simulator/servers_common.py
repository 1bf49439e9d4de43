"""What the simulated grid and IoT platforms share: a real HTTP server on loopback, the vendor gateway's
bad habits (rate limits, 5xx faults) made controllable from tests, a request log and a sorted table.

The servers are real sockets so that connectors are tested through their own HTTP client, timeouts and
retries included; nothing in the pipeline is mocked. Each server runs ``ThreadingHTTPServer`` in a daemon
thread and answers from in-memory data loaded from the generator's data directory.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # a token request is tiny; anything bigger is a client bug
_INTEGER = re.compile(r"-?[0-9]+")  # stricter than int(), which also takes "1_0", " 5 " and full-width digits


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request. ``query`` keeps the last value of a repeated parameter; header names
    are lower-cased, as HTTP header names are case-insensitive."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass
class Response:
    """What a route answers; ``body`` is already encoded."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any) -> Response:
    """UTF-8 JSON without ``\\u`` escapes, as both vendors send Chinese text."""
    return Response(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def html_response(status: int) -> Response:
    """The page a vendor's nginx gateway shows instead of JSON when the backend is down."""
    title = f"{status} {HTTPStatus(status).phrase}"
    body = f"<html><body><h1>{title}</h1></body></html>".encode()
    return Response(status, body, content_type="text/html; charset=utf-8")


class ParameterError(ValueError):
    """A query parameter the platform refuses; the message says what is valid."""


def query_int(query: Mapping[str, str], name: str, default: int) -> int:
    """An integer query parameter, ``default`` when absent; raises ``ParameterError`` otherwise."""
    text = query.get(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise ParameterError(f"{name} must be an integer, got {text!r}")
    return int(text)


class LoggedRequest(NamedTuple):
    """One served request as tests see it: never the body, which carries secrets."""

    method: str
    path: str
    query: dict[str, str]
    status: int


class RequestLog(list[LoggedRequest]):
    """A list that handler threads append to under a lock; tests read it like any list."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def append(self, item: LoggedRequest) -> None:
        with self._lock:
            super().append(item)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def snapshot(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self)


class TokenBucket:
    """About ``rate`` requests per second with a burst of one second's worth (at least one request)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate_limit_per_s must be > 0 or None (no limit), got {rate}")
        self.rate, self.capacity, self._clock = rate, max(1.0, rate), clock
        self._tokens, self._at = self.capacity, clock()
        self._lock = threading.Lock()

    def take(self) -> float | None:
        """Spend one token; ``None`` if allowed, else the seconds until a token is back."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / self.rate


@dataclass
class _Fault:
    status: int
    remaining: int
    html: bool
    path_prefix: str | None


class Gate:
    """The vendor gateway in front of the API: forced throttles, injected faults, then the token bucket."""

    def __init__(self, rate_limit_per_s: float | None) -> None:
        self._bucket = TokenBucket(rate_limit_per_s) if rate_limit_per_s is not None else None
        self._throttles: list[int] = []  # one Retry-After value per forced 429
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def throttle_next(self, n: int, retry_after: int) -> None:
        with self._lock:
            self._throttles.extend([int(retry_after)] * n)

    def add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def check(self, path: str) -> tuple[str, Any] | None:
        """``("throttle", retry_after_s)``, ``("fault", _Fault)`` or ``None`` to let the request through."""
        with self._lock:
            if self._throttles:
                return "throttle", self._throttles.pop(0)
            fault = next((f for f in self._faults if _matches(f, path)), None)
            if fault is not None:
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                return "fault", fault
        wait = self._bucket.take() if self._bucket else None
        # Retry-After is whole seconds on the wire; never 0 for a real limit, or clients would spin.
        return ("throttle", max(1, math.ceil(wait))) if wait is not None else None


def _matches(fault: _Fault, path: str) -> bool:
    return fault.remaining > 0 and (fault.path_prefix is None or path.startswith(fault.path_prefix))


class SortedTable:
    """Items kept ordered by ``(time, id)`` as the vendors page them, with in-place edits.

    ``parse`` turns the item's time text into a comparable datetime; ``fmt`` writes one back when an edit
    moves an item to the end (its time becomes the table's latest plus one second).
    """

    def __init__(
        self,
        name: str,
        items: Iterable[dict],
        *,
        id_field: str,
        time_field: str,
        parse: Callable[[str], dt.datetime],
        fmt: Callable[[dt.datetime], str],
    ) -> None:
        self.name, self.id_field, self.time_field, self._parse, self._fmt = (
            name,
            id_field,
            time_field,
            parse,
            fmt,
        )
        rows = sorted(((self._key(item), item) for item in items), key=lambda row: row[0])
        self._keys = [key for key, _ in rows]
        self._items = [item for _, item in rows]
        self._lock = threading.Lock()

    def _key(self, item: Mapping[str, Any]) -> tuple[dt.datetime, Any]:
        try:
            return self._parse(item[self.time_field]), item[self.id_field]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{self.name}: item has no valid {self.time_field!r} or {self.id_field!r} "
                f"(id {item.get(self.id_field)!r}): {exc}"
            ) from None

    def __len__(self) -> int:
        return len(self._items)

    def page(self, since: dt.datetime | None, offset: int, limit: int) -> tuple[int, list[dict]]:
        """``(total, items)`` of the items at or after ``since`` (inclusive), skipping ``offset``."""
        with self._lock:
            start = bisect.bisect_left(self._keys, (since,)) if since is not None else 0
            first = start + offset
            return len(self._items) - start, self._items[first : first + limit]

    def ids(self) -> set[Any]:
        with self._lock:
            return {item[self.id_field] for item in self._items}

    def edit(self, item_id: Any, changes: Mapping[str, Any]) -> dict:
        """Apply ``changes`` and bump the time past every other item's so the item moves to the end."""
        if self.id_field in changes:
            raise ValueError(f"{self.name}: an edit cannot change the id field {self.id_field!r}")
        with self._lock:
            index = self._index_of(item_id)
            old = self._items.pop(index)
            del self._keys[index]
            new = {**old, **changes}
            if self.time_field not in changes:
                latest = max(self._key(old)[0], self._keys[-1][0]) if self._keys else self._key(old)[0]
                new[self.time_field] = self._fmt(latest + dt.timedelta(seconds=1))
            key = self._key(new)
            at = bisect.bisect_right(self._keys, key)
            self._keys.insert(at, key)
            self._items.insert(at, new)
            return dict(new)

    def _index_of(self, item_id: Any) -> int:
        for index, item in enumerate(self._items):
            if item[self.id_field] == item_id:
                return index
        raise KeyError(f"{self.name} has no item with {self.id_field}={item_id!r}")


def as_of(
    items: Iterable[dict], id_field: str, time_field: str, parse: Callable[[str], Any], until: Any
) -> list[dict]:
    """What a living street's list held at ``until``: per id, the newest version whose time is at or
    before it (``days.py`` writes every version of an item, each with the time it was made)."""
    newest: dict[Any, tuple[Any, dict]] = {}
    for item in items:
        moment = parse(item[time_field])
        if moment <= until:
            seen = newest.get(item[id_field])
            if seen is None or moment >= seen[0]:
                newest[item[id_field]] = (moment, item)
    return [item for _, item in newest.values()]


def day_end(day: dt.date) -> dt.datetime:
    """T of a served day: the next local midnight, as an aware datetime (Asia/Shanghai, +08:00)."""
    local = dt.timezone(dt.timedelta(hours=8))
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), local)


def load_json_list(path: Path) -> list[dict]:
    """One of the generator's ``*.json`` files: a JSON list of items exactly as the API returns them."""
    items = json.loads(path.read_bytes())
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of items, found {type(items).__name__}")
    return items


def resolve_data_dir(data_dir: Path, system: str, required: Iterable[str]) -> Path:
    """The folder holding ``required`` files: ``data_dir`` itself or its ``system`` subfolder.

    Accepting the street's root as well as ``root/grid`` lets the CLI and the fixtures pass either.
    Raises ``FileNotFoundError`` naming every missing file.
    """
    data_dir = Path(data_dir)
    required = list(required)
    for candidate in (data_dir, data_dir / system):
        if all((candidate / name).is_file() for name in required):
            return candidate
    missing = [name for name in required if not (data_dir / name).is_file()]
    raise FileNotFoundError(
        f"{system} simulator: {data_dir} lacks {', '.join(missing)} "
        f"(looked in {data_dir} and {data_dir / system}); run the generator first"
    )


class _Handler(BaseHTTPRequestHandler):
    """Turns one HTTP exchange into a ``Request`` for the simulated platform and writes its ``Response``."""

    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections to real vendors
    server_version = "islandbridge-simulator"
    sys_version = ""
    timeout = 30  # an idle keep-alive connection is dropped after this many seconds
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would delay the second
    server: _LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: the default writes an access log line to stderr for every request."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would corrupt the next request on this socket
            self._write(json_response(413, {"error": "request body too large"}))
            return
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, url.path, query, headers, body)
        self._write(self.server.sim.dispatch(request))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class _LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading server that remembers its open connections so ``stop`` can close them.

    Without that, a handler thread parked on an idle keep-alive connection would outlive the server.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], sim: SimulatedServer) -> None:
        self.sim = sim
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{type(self.sim).__name__}-conn",
            daemon=True,
        )
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client hanging up mid-response is normal in retry tests, not worth a traceback."""
        logger.debug("simulator connection error", exc_info=True)

    def close_connections(self, timeout: float) -> None:
        with self._open_lock:
            open_now = list(self._open.items())
        for sock, _ in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in open_now:
            thread.join(timeout)


class PortUnavailable(OSError):
    """A simulated server could not listen on its address (the port is taken, or not allowed); ``port``
    says which, so ``islandbridge serve`` can name it and the option that moves it."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot listen on {host}:{port}: {cause.strerror}")
        self.port = port


class SimulatedServer:
    """Base of the simulated platforms: lifecycle, gateway behaviour and the request log.

    Subclasses implement ``route`` (the API itself) and the three platform-specific answers below.
    """

    def __init__(self, *, rate_limit_per_s: float | None, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.requests = RequestLog()
        self._gate = Gate(rate_limit_per_s)
        self._httpd: _LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() or use it in a `with`")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        """Bind (port 0 picks a free one) and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already running at {self.base_url}")
        self.on_start()
        try:
            self._httpd = _LoopbackHTTPServer((self.host, self.port), self)
        except OSError as exc:
            self.on_stop()  # e.g. the port is taken: release what on_start opened
            raise PortUnavailable(self.host, self.port, exc) from exc
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}-serve",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the socket, and join the threads. Idempotent."""
        httpd, thread, self._httpd, self._thread = self._httpd, self._thread, None, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections(timeout=2.0)
        httpd.server_close()
        if thread is not None:
            thread.join(2.0)
        self.on_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def on_start(self) -> None:
        """Hook: acquire resources (files) before the socket opens."""

    def on_stop(self) -> None:
        """Hook: release them after every handler thread is done."""

    # -- gateway controls ------------------------------------------------------------------------
    def throttle_next(self, n: int, retry_after: int = 1) -> None:
        """Answer the next ``n`` requests with HTTP 429 and ``Retry-After: retry_after`` (whole seconds)."""
        self._gate.throttle_next(n, retry_after)

    def inject_faults(
        self, status: int = 502, count: int = 1, html: bool | None = None, path_prefix: str | None = None
    ) -> None:
        """Fail the next ``count`` requests whose path starts with ``path_prefix`` (any if None).

        ``status`` is a 5xx; ``html`` picks an HTML gateway page over the platform's JSON error
        (``None``: the platform's habit). Example: ``server.inject_faults(502, 2, path_prefix="/api/v2/residents")``.
        """
        if not 500 <= status <= 599:
            raise ValueError(f"inject_faults: status must be a 5xx such as 502 or 503, got {status}")
        html = self.faults_are_html if html is None else html
        self._gate.add_fault(_Fault(status, count, html, path_prefix))

    # -- request pipeline ------------------------------------------------------------------------
    faults_are_html = True

    def dispatch(self, request: Request) -> Response:
        """Gateway first, then the API; logged before the answer is written, so tests never race it."""
        try:
            response = self._through_gate(request) or self.route(request)
        except Exception:  # noqa: BLE001 - a simulator bug must answer 500, not hang the client
            logger.exception("simulator route failed for %s %s", request.method, request.path)
            response = self.error(500, "internal simulator error")
        self.requests.append(
            LoggedRequest(request.method, request.path, dict(request.query), response.status)
        )
        return response

    def _through_gate(self, request: Request) -> Response | None:
        verdict = self._gate.check(request.path)
        if verdict is None:
            return None
        kind, detail = verdict
        if kind == "throttle":
            response = self.error(429, "too many requests")
            response.headers["Retry-After"] = str(detail)
            return response
        return (
            html_response(detail.status) if detail.html else self.error(detail.status, "service unavailable")
        )

    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        """The platform's own error body for an HTTP error status."""
        raise NotImplementedError
