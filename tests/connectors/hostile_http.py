"""A scriptable misbehaving HTTP server on loopback, for the REST connectors' hostile-input tests.

``HostileServer(handler)`` calls ``handler(request)`` for every request and sends back the ``Reply`` it
returns: any status, headers and body, and a body may be a list of ``(bytes, seconds_before)`` chunks to
trickle it. ``grid_api`` and ``iot_api`` build handlers that speak just enough of each vendor's API, with
hooks to break it. Nothing here is committed data: every test builds its own.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Seen:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes | Sequence[tuple[bytes, float]] = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def json_reply(payload: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(
        status,
        json.dumps(payload, ensure_ascii=False).encode(),
        {"Content-Type": "application/json", **headers},
    )


def gzip_bomb(inflated_bytes: int) -> bytes:
    """A gzip body of zeros that inflates to ``inflated_bytes`` (about 1000 times smaller on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * 2**20
    parts = [packer.compress(block) for _ in range(inflated_bytes // len(block))]
    return b"".join(parts) + packer.flush()


class HostileServer:
    """A threaded loopback server answering every request with ``handler(request)``."""

    def __init__(self, handler: Callable[[Seen], Reply]) -> None:
        self.handler, self.requests = handler, []
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                size = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(size) if size else b"",
                )
                outer.requests.append(seen)
                reply = outer.handler(seen)
                chunks = [(reply.body, 0.0)] if isinstance(reply.body, bytes) else list(reply.body)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(sum(len(c) for c, _ in chunks)))
                self.end_headers()
                try:
                    for chunk, pause in chunks:
                        if pause and outer.stopping.wait(pause):
                            return
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return

            do_GET = do_POST = _serve  # noqa: N815 - the base class's naming

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up on a trickle or a bomb is the point of the test, not news

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll: shutdown() waits up to one poll, and the hostile corpus starts hundreds of servers.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def grid_item(n: int, update_time: str = "2026-11-01 08:00:00", **fields: Any) -> dict[str, Any]:
    """A grid /workers item (no personal data: the name and phone are placeholders)."""
    return {
        "worker_id": f"W{n:04d}",
        "name": "测试",
        "phone": None,
        "grid_code": "G001",
        "active": True,
        "update_time": update_time,
        **fields,
    }


def grid_api(
    lists: Mapping[str, list[Any]],
    *,
    token: str = "tok-123",
    page_hook: Callable[[str, list[Any], Mapping[str, str]], Reply | None] | None = None,
) -> Callable[[Seen], Reply]:
    """A grid platform serving ``lists`` (by endpoint; others empty), ordered and paged as the vendor does.

    ``page_hook(endpoint, matching_items, query)`` may return a ``Reply`` to send instead of the page.
    """

    def handler(request: Seen) -> Reply:
        if request.path.endswith("/auth/token"):
            return json_reply({"code": 0, "msg": "ok", "data": {"access_token": token, "expires_in": 3600}})
        endpoint = request.path.rsplit("/", 1)[-1]
        since = request.query.get("updated_after")
        items = [
            i
            for i in lists.get(endpoint, [])
            if not isinstance(i, dict) or since is None or str(i.get("update_time")) >= since
        ]
        if page_hook is not None and (hooked := page_hook(endpoint, items, request.query)) is not None:
            return hooked
        page, size = int(request.query.get("page", 1)), int(request.query.get("page_size", 500))
        data = {
            "total": len(items),
            "page": page,
            "page_size": size,
            "items": items[(page - 1) * size : page * size],
        }
        return json_reply({"code": 0, "msg": "ok", "data": data})

    return handler


def iot_api(pages: Mapping[str | None, Mapping[str, Any] | Reply]) -> Callable[[Seen], Reply]:
    """An IoT platform with no devices and holders, whose event log answers ``pages[cursor]``."""

    def handler(request: Seen) -> Reply:
        if request.path.endswith("/devices"):
            return json_reply({"devices": []})
        if request.path.endswith("/cardholders"):
            return json_reply({"items": [], "offset": 0, "limit": 1000, "total": 0})
        answer = pages[request.query.get("cursor")]
        return answer if isinstance(answer, Reply) else json_reply(answer)

    return handler


def raw_json_reply(text: str, status: int = 200, content_type: str = "application/json") -> Reply:
    """A body written by hand (to send what ``json.dumps`` would not: lone surrogates, NaN)."""
    return Reply(status, text.encode("utf-8"), {"Content-Type": content_type})


def slowly(data: bytes, every_s: float) -> list[tuple[bytes, float]]:
    """``data`` one byte at a time, ``every_s`` apart."""
    return [(data[i : i + 1], every_s) for i in range(len(data))]


def monotonic_ticker(step_s: float) -> Callable[[], float]:
    """A wall clock that moves ``step_s`` on every reading: deadlines without waiting."""
    now = [time.monotonic()]

    def tick() -> float:
        now[0] += step_s
        return now[0]

    return tick
