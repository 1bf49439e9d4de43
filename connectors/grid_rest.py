"""The grid management platform (网格化服务管理平台), a vendor SaaS behind REST API v2.

Five list endpoints, each landed as one stream, incrementally by ``update_time``. The vendor's quirks and
what this module does about them:

* An expired token is answered with **HTTP 200** and ``code 40101``: fetch a new token and repeat the
  request (at most ``MAX_TOKEN_REFRESHES`` times per request). Any other non-zero ``code`` is an error
  even under HTTP 200 and raises ``FatalSourceError`` naming the endpoint, the code and the vendor's msg.
* Bad credentials are HTTP 401 / ``code 40100`` on ``POST /auth/token``: ``FatalSourceError``.
* ``updated_after`` is **inclusive**, so a re-run sees again the records at the watermark. The state
  keeps the ``(id, update_time)`` versions landed at (or within ``overlap_s`` of) the watermark; re-read
  ones are counted as duplicates, not landed twice.
* Records edited while we page move to the end of the list, so page numbers over the changing list
  would skip records. We read keyset-style: after each page we ask again from the last ``update_time``
  seen, page 1, and drop versions already read. Only when a whole page shares one ``update_time`` (the
  cursor cannot advance) do we step to the next page number.
* 429 with ``Retry-After``, 502/503 with an HTML body, timeouts: retried by ``connectors.http``, which
  also bounds every answer by a deadline and a size limit.
* Hostile or broken lists (``connectors.paging``): an item that is not an object or holds invalid
  Unicode, an ``update_time`` that is not a time or is far in the future (``9999-12-31``), the same id
  and ``update_time`` re-sent with different content: each quarantined with its reason, once. A page
  short of the answer's ``total`` is a ``RetriableError``, never a silent end of the list. A token that
  is not plain visible ASCII (CR/LF inside) is a ``FatalSourceError``.

Accounting of a record edited during the run: each item the API returns is read once; the newest version
of an id is landed, an older version read earlier in the same run is counted as a duplicate (superseded),
so a run lands at most one row per record key. ``ctx.as_of`` bounds the window: items with
``update_time`` after it (local time) are left for the next run, are not counted, and the watermark
never passes the as-of. See docs/connectors-rest.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from islandbridge.config import LOCAL_TZ, Secret
from islandbridge.connectors.base import ExtractContext, Stream, declared_stream, register
from islandbridge.connectors.http import HttpClient, RestConnector, RestOptions, sanitize_url
from islandbridge.connectors.options import option
from islandbridge.connectors.paging import Page, VersionClock, VersionedStream, page_total, sync_versioned
from islandbridge.errors import FatalSourceError, count

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2"
MAX_PAGE_SIZE = 500
MAX_TOKEN_REFRESHES = 2
CODE_OK, CODE_BAD_CREDENTIALS, CODE_TOKEN_EXPIRED = 0, 40100, 40101
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# What a bearer token may hold (RFC 6750 b64token, loosened to visible ASCII): never CR, LF or spaces.
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")


def _parse_local(text: Any) -> dt.datetime | None:
    """The vendor's ``update_time``: naive local text (Asia/Shanghai); ``None`` if it is not that."""
    if not isinstance(text, str) or not _LOCAL_TIME.fullmatch(text):
        return None
    try:
        return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=LOCAL_TZ)
    except ValueError:
        return None


LOCAL_CLOCK = VersionClock(_parse_local, lambda moment: moment.astimezone(LOCAL_TZ).strftime(TIME_FORMAT))

# Keys and columns as the raw schema declares them (schemas/raw_grid.yml).
STREAMS: tuple[Stream, ...] = tuple(
    declared_stream("grid_rest", name) for name in ("grids", "workers", "residents", "events", "visits")
)


@dataclass(frozen=True)
class GridOptions(RestOptions):
    """The grid platform's options (`GridRestConnector`)."""

    client_id: str = option(required=True)
    client_secret: Secret | None = option(required=True)
    page_size: int = option(MAX_PAGE_SIZE, low=1, high=MAX_PAGE_SIZE)


@register
class GridRestConnector(RestConnector):
    """Lands the grid platform's five lists incrementally.

    Options: ``base_url``, ``client_id``, ``client_secret`` (a ``Secret``), ``page_size`` (1..500,
    default 500), ``overlap_s`` (default 0: re-read this many seconds before the watermark), ``max_pages``
    (per stream, default 10000) and the retry options of `connectors.http.RestOptions`.
    Tests may replace ``self.pacing`` to make retries instant.

    Example::

        grid = build_connector(SourceSettings("grid", "grid_rest", {"base_url": url, ...}))
        state = grid.extract(ExtractContext(run_id, as_of, old_state, sink))
    """

    kind = "grid_rest"
    system = "grid_platform"
    required_options = ("base_url", "client_id", "client_secret")

    options_class = GridOptions
    secret_option = "client_secret"

    def configure(self, problems: list[str]) -> None:
        self.page_size = self.opts.page_size

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    def extract(self, ctx: ExtractContext) -> Mapping[str, Any]:
        """Land every stream from its watermark up to ``ctx.as_of``; return the new watermarks.

        Raises ``FatalSourceError`` (credentials, vendor error codes) or ``RetriableError`` (budget spent).
        """
        state: dict[str, Any] = {}
        with HttpClient(self.base_url + API_PREFIX, self.policy, pacing=self.pacing) as client:
            session = _GridSession(client, self.opts.client_id, self.secret.reveal())
            for stream in STREAMS:
                state[stream.name] = self._sync(session, stream, ctx)
        return state

    def _sync(self, session: _GridSession, stream: Stream, ctx: ExtractContext) -> dict[str, Any]:
        """Read one stream from its watermark, land the newest version of each record, return its state."""
        versions = VersionedStream(
            stream, "update_time", LOCAL_CLOCK, ctx.state.get(stream.name) or {}, self.overlap_s
        )
        state = sync_versioned(
            lambda since, page: session.page(stream.name, since, page, self.page_size),
            versions,
            ctx.sink,
            until=ctx.as_of,
            page_size=self.page_size,
            max_pages=self.max_pages,
            what=f"grid GET /{stream.name}",
        )
        log.debug("grid %s: %s landed", stream.name, count(len(versions.latest), "record"))
        return state


class _GridSession:
    """Token handling and the vendor's envelope (``{"code", "msg", "data"}``) for one extraction."""

    def __init__(self, client: HttpClient, client_id: str, client_secret: str) -> None:
        self.client, self._id, self._secret = client, client_id, client_secret
        self._token: str | None = None

    def page(self, endpoint: str, updated_after: str | None, page: int, page_size: int) -> Page:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if updated_after:
            params["updated_after"] = updated_after
        data = self.get("/" + endpoint, params)
        items = data.get("items") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise FatalSourceError(
                f"grid GET {self._where('/' + endpoint)}: no data.items list; the API changed"
            )
        return Page(items, page_total(data.get("total"), f"grid GET {self._where('/' + endpoint)}"))

    def get(self, path: str, params: Mapping[str, Any]) -> Any:
        """GET with a bearer token; an expired token (HTTP 200, code 40101) is refreshed and retried."""
        for _ in range(MAX_TOKEN_REFRESHES + 1):
            token = self._token or self._login()
            response = self.client.request(
                "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
            body = self._envelope(response, "GET", path)
            # The vendor answers an expired token with HTTP 200 and code 40101, not with a 401.
            if body.get("code") == CODE_TOKEN_EXPIRED or response.status_code == 401:
                log.info("grid GET %s: token expired, fetching a new one", path)
                self._token = None
                continue
            return self._data(response, body, "GET", path, params)
        raise FatalSourceError(
            f"grid GET {self._where(path)}: token refused {MAX_TOKEN_REFRESHES + 1} times right after "
            "fetching a new one; check the platform's clock and the client's permissions"
        )

    def _login(self) -> str:
        response = self.client.request(
            "POST", "/auth/token", json={"client_id": self._id, "client_secret": self._secret}
        )
        body = self._envelope(response, "POST", "/auth/token")
        if response.status_code == 401 or body.get("code") == CODE_BAD_CREDENTIALS:
            raise FatalSourceError(
                f"grid POST {self._where('/auth/token')}: credentials refused (HTTP {response.status_code}, "
                f"code {body.get('code')}: {self._msg(body)}); check client_id and client_secret"
            )
        data = self._data(response, body, "POST", "/auth/token")
        token = data.get("access_token") if isinstance(data, Mapping) else None
        if not token:
            raise FatalSourceError(f"grid POST {self._where('/auth/token')}: answer carries no access_token")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise FatalSourceError(
                f"grid POST {self._where('/auth/token')}: the access_token is not plain visible ASCII (it "
                "holds control characters such as CR/LF, spaces or other text); it cannot be sent as a "
                "header. The platform's token service is broken; tell the vendor"
            )
        self._token = str(token)
        return self._token

    def _envelope(self, response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        try:
            body = response.json()
        except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's stack
            body = None
        if not isinstance(body, dict):
            raise FatalSourceError(
                f"grid {method} {self._where(path)}: HTTP {response.status_code} without the JSON envelope"
            )
        return body

    def _data(
        self,
        response: httpx.Response,
        body: Mapping[str, Any],
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """``data`` of a successful envelope; any non-zero code, even under HTTP 200, is fatal."""
        if response.status_code != 200 or body.get("code") != CODE_OK:
            raise FatalSourceError(
                f"grid {method} {self._where(path, params)}: HTTP {response.status_code}, code {body.get('code')}: "
                f"{self._msg(body)}"
            )
        return body.get("data")

    def _msg(self, body: Mapping[str, Any]) -> str:
        """The vendor's message, short, with our own secret masked should it ever be echoed back."""
        msg = str(body.get("msg", ""))[:200]
        return msg.replace(self._secret, "***") if self._secret else msg

    def _where(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        return sanitize_url(httpx.URL(self.client.base_url + path, params=params))
