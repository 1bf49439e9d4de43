"""The simulated grid management platform (网格化服务管理平台, REST API v2), SPEC section B.

Serves the generator's ``grid/*.json`` under ``/api/v2`` with the vendor's quirks, each one controllable
from a test: bearer tokens that expire into an HTTP 200 error, ``code`` errors under HTTP 200, paging by
``(update_time, id)`` where an edited record jumps to the end, a gateway rate limit and HTML 5xx pages.

Example::

    with GridServer(street / "grid", client_id="cid", client_secret="s3cret") as grid:
        token = httpx.post(f"{grid.base_url}/api/v2/auth/token",
                           json={"client_id": "cid", "client_secret": "s3cret"}).json()["data"]["access_token"]
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

API_PREFIX = "/api/v2"
# Endpoint -> the field that identifies an item (the tie-breaker of the paging order).
ENDPOINTS: Mapping[str, str] = {
    "grids": "grid_code",
    "workers": "worker_id",
    "residents": "person_id",
    "events": "event_id",
    "visits": "visit_id",
}
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 20
LOCAL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

# The vendor's business codes, sent in the body whatever the HTTP status.
CODE_OK = 0
CODE_BAD_PARAMETER = 40001
CODE_UNAUTHORIZED = 40100
CODE_TOKEN_EXPIRED = 40101


@dataclass(frozen=True)
class _ScheduledEdit:
    endpoint: str
    after_page: int
    item_ids: tuple[Any, ...]
    changes: Mapping[str, Any]


def _envelope(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def _parse_local(text: str) -> dt.datetime:
    """Grid times are naive local text ``YYYY-MM-DD HH:MM:SS``; ``fromisoformat`` reads it fast."""
    return dt.datetime.fromisoformat(text)


def _format_local(moment: dt.datetime) -> str:
    return moment.strftime(LOCAL_TIME_FORMAT)


class GridServer(SimulatedServer):
    """The grid platform on loopback; a context manager that serves on enter and stops on exit.

    ``data_dir`` holds ``{grids,workers,residents,events,visits}.json`` (or is the street root holding
    ``grid/``). ``rate_limit_per_s=None`` turns the gateway's rate limit off. Tokens are random per
    instance; ``expire_tokens()`` ages all of them at once.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        client_id: str,
        client_secret: str,
        token_ttl_s: float = 3600,
        rate_limit_per_s: float | None = 50,
        host: str = "127.0.0.1",
        port: int = 0,
        day: dt.date | None = None,
    ) -> None:
        super().__init__(rate_limit_per_s=rate_limit_per_s, host=host, port=port)
        folder = resolve_data_dir(data_dir, "grid", [f"{name}.json" for name in ENDPOINTS])
        self._all = {name: load_json_list(folder / f"{name}.json") for name in ENDPOINTS}
        self.set_day(day)
        self._credentials = (client_id, client_secret)
        self.token_ttl_s = token_ttl_s
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._scheduled: list[_ScheduledEdit] = []
        self._lock = threading.Lock()

    def set_day(self, day: dt.date | None) -> None:
        """Serve the street as it was at the end of ``day`` (a living street, ``days.py``): per item, its
        newest version with ``update_time`` at or before that day's end; ``None`` serves every item as
        written. Edits made through :meth:`edit` are dropped."""
        until = None if day is None else day_end(day).replace(tzinfo=None)
        self.day = day
        self._tables = {
            name: SortedTable(
                name,
                self._all[name]
                if until is None
                else as_of(self._all[name], id_field, "update_time", _parse_local, until),
                id_field=id_field,
                time_field="update_time",
                parse=_parse_local,
                fmt=_format_local,
            )
            for name, id_field in ENDPOINTS.items()
        }

    # -- test controls ---------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Make every token issued so far expired now (the next use gets HTTP 200 + code 40101)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = {token: min(expiry, now) for token, expiry in self._tokens.items()}

    def edit(self, endpoint: str, item_id: Any, **changes: Any) -> dict:
        """Change one item as a grid worker would; its ``update_time`` becomes the latest of the list
        plus one second (unless given), so it moves to the end. Returns the edited item.

        Raises ``KeyError`` for an unknown endpoint or id.
        """
        return self._table(endpoint).edit(item_id, changes)

    def edit_during_paging(
        self, endpoint: str, after_page: int = 1, item_ids: Sequence[Any] = (), **changes: Any
    ) -> None:
        """Edit ``item_ids`` right after page ``after_page`` of ``endpoint`` has been computed and before
        the client sees it, so its next page already reflects the move: the vendor's paging race, made
        deterministic. Fires once.
        """
        table = self._table(endpoint)
        unknown = [item_id for item_id in item_ids if item_id not in table.ids()]
        if not item_ids or unknown:
            raise KeyError(
                f"edit_during_paging({endpoint!r}) needs existing item_ids; "
                f"unknown: {unknown or '(none given)'}"
            )
        with self._lock:
            self._scheduled.append(_ScheduledEdit(endpoint, after_page, tuple(item_ids), dict(changes)))

    def _table(self, endpoint: str) -> SortedTable:
        try:
            return self._tables[endpoint]
        except KeyError:
            raise KeyError(f"grid has no endpoint {endpoint!r}; known: {', '.join(ENDPOINTS)}") from None

    # -- the API ---------------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        name = (
            request.path.removeprefix(API_PREFIX + "/") if request.path.startswith(API_PREFIX + "/") else None
        )
        if name == "auth/token":
            return self._issue_token(request) if request.method == "POST" else self.error(405, "use POST")
        if name not in self._tables:
            return self.error(404, f"no such endpoint: {request.path}")
        if request.method != "GET":
            return self.error(405, "use GET")
        return self._refuse_token(request) or self._list(name, request.query)

    def error(self, status: int, message: str) -> Response:
        # The vendor's code for an HTTP error is the status times 100 (401 -> 40100, 429 -> 42900).
        return json_response(status, _envelope(status * 100, message))

    def _issue_token(self, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"null")
            client_id, client_secret = str(body["client_id"]), str(body["client_secret"])
        except (ValueError, TypeError, KeyError):
            return json_response(
                200,
                _envelope(CODE_BAD_PARAMETER, 'body must be JSON {"client_id": ..., "client_secret": ...}'),
            )
        if not self._credentials_match(client_id, client_secret):
            return self.error(401, "invalid client credentials")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl_s
        data = {"access_token": token, "expires_in": math.ceil(self.token_ttl_s)}
        return json_response(200, _envelope(CODE_OK, "ok", data))

    def _credentials_match(self, client_id: str, client_secret: str) -> bool:
        id_ok = hmac.compare_digest(client_id.encode(), self._credentials[0].encode())
        return hmac.compare_digest(client_secret.encode(), self._credentials[1].encode()) and id_ok

    def _refuse_token(self, request: Request) -> Response | None:
        """``None`` for a live token; otherwise the vendor's refusal."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None:
            return self.error(401, "missing or invalid access token")
        if expiry <= time.monotonic():
            # Vendor quirk: an expired token is a business error under HTTP 200, not a 401.
            return json_response(200, _envelope(CODE_TOKEN_EXPIRED, "token expired"))
        return None

    def _list(self, name: str, query: Mapping[str, str]) -> Response:
        try:
            page, page_size, updated_after = _paging(query)
        except ParameterError as exc:
            # Vendor quirk: a refused parameter is HTTP 200 with code 40001.
            return json_response(200, _envelope(CODE_BAD_PARAMETER, str(exc)))
        total, items = self._tables[name].page(updated_after, (page - 1) * page_size, page_size)
        data = {"total": total, "page": page, "page_size": page_size, "items": items}
        response = json_response(200, _envelope(CODE_OK, "ok", data))
        self._fire_scheduled(name, page)
        return response

    def _fire_scheduled(self, name: str, page: int) -> None:
        with self._lock:
            due = [s for s in self._scheduled if s.endpoint == name and s.after_page == page]
            self._scheduled = [s for s in self._scheduled if s not in due]
        for scheduled in due:
            for item_id in scheduled.item_ids:
                self._tables[name].edit(item_id, scheduled.changes)


def _paging(query: Mapping[str, str]) -> tuple[int, int, dt.datetime | None]:
    """``(page, page_size, updated_after)`` from the query; raises ``ParameterError`` saying what is valid."""
    page = query_int(query, "page", 1)
    page_size = query_int(query, "page_size", DEFAULT_PAGE_SIZE)
    if page < 1:
        raise ParameterError(f"page must be >= 1 (1-based), got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ParameterError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
    return page, page_size, _updated_after(query.get("updated_after"))


def _updated_after(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        if not _LOCAL_TIME.fullmatch(text):
            raise ValueError
        return dt.datetime.strptime(text, LOCAL_TIME_FORMAT)
    except ValueError:
        raise ParameterError(
            f"updated_after must be local time 'YYYY-MM-DD HH:MM:SS' (e.g. 2026-11-01 08:00:00), got {text!r}"
        ) from None
