"""Shared HTTP plumbing for the REST connectors: timeouts, deadlines, size limits, bounded retries, sanitised logs.

Vendor APIs fail in ordinary ways — a gateway answers 502/503 with an HTML page, a rate limiter answers
429 with ``Retry-After``, a socket hangs. ``HttpClient.request`` retries those with exponential backoff
and full jitter, inside a budget of attempts *and* seconds, and then raises ``RetriableError`` naming the
endpoint, the last status and the attempts made, so the operator knows to simply run again later. Every
other answer (2xx, and 4xx other than 429) is handed back: what a 401 or a vendor error code means is the
connector's business.

A hostile or broken server cannot hold a run: every answer is read as a stream against a wall-clock
**deadline per request** (``request_deadline_s``: a server trickling a byte every few seconds never trips
the per-read timeout, but it trips this) and **per extraction** (``extract_deadline_s``), both
``RetriableError``; and against a **size limit** on the decompressed body (``max_response_mb``; a gzip bomb
is stopped while it inflates), ``FatalSourceError``. Answers that no retry will change are terminal:
JSON served as ``text/html`` (a contract break), a request that cannot be sent as written (a header value
with CR/LF), a body whose content encoding cannot be decoded.

Only sanitised URLs and status codes are logged — never headers, tokens, request or response bodies.

Example::

    client = HttpClient("https://vendor.example/api/v2", RetryPolicy(max_attempts=3))
    response = client.request("GET", "/grids", params={"page": 1})
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from queue import Full, Queue
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from islandbridge.config import Secret
from islandbridge.connectors.base import Connector
from islandbridge.connectors.options import option, parse_options
from islandbridge.errors import ConfigError, FatalSourceError, RetriableError, count

log = logging.getLogger(__name__)
T = TypeVar("T")
# httpx logs every request line with the full, unsanitised URL at INFO; this client logs sanitised URLs
# itself, so httpx speaks only of warnings and errors.
logging.getLogger("httpx").setLevel(logging.WARNING)

# Query parameters whose values are masked wherever a URL is logged or put into an error message.
_SECRET_PARAM = re.compile(r"key|token|secret|pass|sign|auth|session|credential", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for one answer and how hard to try before giving up.

    ``max_attempts`` and ``max_total_s`` both bound a request: whichever runs out first ends it.
    A server's ``Retry-After`` is honoured but capped at ``max_retry_after_s`` so a vendor cannot park
    the pipeline for an hour. ``request_deadline_s`` bounds one attempt's answer in wall time (the read
    timeout only bounds the wait for each chunk), ``extract_deadline_s`` the whole extraction, and
    ``max_response_bytes`` the decompressed size of one body.
    """

    max_attempts: int = 5
    max_total_s: float = 120.0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    request_deadline_s: float = 120.0
    extract_deadline_s: float = 4 * 3600.0
    max_response_bytes: int = 64 * 2**20

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))], so clients do not retry in step."""
        return rng.uniform(0.0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


@dataclass
class Pacing:
    """The clock, sleep and randomness a client uses; tests inject fast, recorded ones."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: The wall clock deadlines are measured on; real even when a test fakes ``clock`` and ``sleep``.
    wall: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class RestOptions:
    """The options every vendor REST connector takes (its own dataclass adds the rest).

    ``timeout_s`` (read), ``connect_timeout_s``, ``max_attempts``, ``backoff_s``, ``max_retry_s`` (the
    total seconds budget of one request), ``max_retry_after_s``, ``request_deadline_s`` (one answer, wall
    time), ``extract_deadline_s`` (the whole extraction), ``max_response_mb`` (one decompressed body),
    ``overlap_s`` (seconds re-read below a watermark) and ``max_pages`` (a bound on one stream's pages).
    """

    base_url: str = option(required=True)
    timeout_s: float = option(RetryPolicy.read_timeout_s, positive=True)
    connect_timeout_s: float = option(RetryPolicy.connect_timeout_s, positive=True)
    max_attempts: int = option(RetryPolicy.max_attempts, positive=True)
    backoff_s: float = option(RetryPolicy.backoff_s, positive=True)
    max_retry_s: float = option(RetryPolicy.max_total_s, positive=True)
    max_retry_after_s: float = option(RetryPolicy.max_retry_after_s, positive=True)
    request_deadline_s: float = option(RetryPolicy.request_deadline_s, positive=True)
    extract_deadline_s: float = option(RetryPolicy.extract_deadline_s, positive=True)
    max_response_mb: float = option(RetryPolicy.max_response_bytes / 2**20, positive=True)
    overlap_s: int = option(0, low=0, high=86_400 * 7)
    max_pages: int = option(10_000, low=1, high=10**7)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            max_total_s=self.max_retry_s,
            backoff_s=self.backoff_s,
            max_retry_after_s=self.max_retry_after_s,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.timeout_s,
            request_deadline_s=self.request_deadline_s,
            extract_deadline_s=self.extract_deadline_s,
            max_response_bytes=int(self.max_response_mb * 2**20),
        )


class RestConnector(Connector):
    """The option handling the vendor REST connectors share: retries, overlap, page bound, base URL.

    Subclasses declare their options as a `RestOptions` subclass (``options_class``), name their secret
    option, and check what a type cannot in ``configure``.
    """

    options_class: ClassVar[type[RestOptions]] = RestOptions
    secret_option: ClassVar[str]

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.opts = parse_options(self.options_class, self.name, self.kind, self.options)
        self.secret: Secret | None = getattr(self.opts, self.secret_option)
        self.policy = self.opts.policy()
        self.overlap_s, self.max_pages = self.opts.overlap_s, self.opts.max_pages
        problems: list[str] = []
        self.configure(problems)
        if problems:
            raise ConfigError(f"sources.{self.name} ({self.kind}): " + "; ".join(problems))
        self.base_url = self.opts.base_url.rstrip("/")
        self.pacing = Pacing()

    def configure(self, problems: list[str]) -> None:
        """Read the subclass's own options, appending any problem to ``problems``."""

    def describe(self) -> str:
        return f"{self.name} ({self.kind} at {sanitize_url(self.base_url)})"


def sanitize_url(url: str | httpx.URL) -> str:
    """The URL without credentials and with secret-looking query values masked (``api_key=***``)."""
    parts = urlsplit(str(url))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode(
        [
            (k, "***" if _SECRET_PARAM.search(k) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*:",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class HttpClient:
    """A small retrying JSON-over-HTTP client bound to one base URL.

    ``request`` returns the first answer that is not transient; transient ones (429, 5xx, timeouts,
    transport errors, an HTML page where JSON was due) are retried within ``policy``, then
    ``RetriableError`` is raised. Each body is read as a stream, within the request's and the
    extraction's deadline and the size limit. Use as a context manager or call ``close``: the
    extraction's deadline starts when the client is made.
    """

    def __init__(
        self,
        base_url: str,
        policy: RetryPolicy | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        pacing: Pacing | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.pacing = pacing or Pacing()
        self.base_url = base_url.rstrip("/")
        self.extract_ends = self.pacing.wall() + self.policy.extract_deadline_s
        self._http = httpx.Client(
            headers=dict(headers or {}), timeout=self.policy.timeout(), transport=transport
        )

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request, retrying transient failures; ``kwargs`` go to ``httpx.Client.request``.

        Raises ``RetriableError`` when the budget or a deadline is spent, ``FatalSourceError`` when the
        answer is too large or breaks the contract in a way no retry changes. The response of a
        non-transient answer is returned with its body read, whatever its status.
        """
        url = self.base_url + path
        started = self.pacing.clock()
        attempt, last = 0, "no answer"
        while True:
            attempt += 1
            self._check_extract_deadline(method, url, kwargs)
            delay, last = self._attempt(method, url, attempt, kwargs)
            if delay is None:
                return last  # type: ignore[return-value]
            if not self._may_wait(attempt, started, delay):
                raise RetriableError(
                    f"{method} {sanitize_url(self._full(url, kwargs))}: gave up after {count(attempt, 'attempt')} "
                    f"in {self.pacing.clock() - started:.1f}s; last answer: {last}. "
                    "The source is unavailable or throttling us; run again later."
                )
            self.pacing.sleep(delay)

    def _attempt(
        self, method: str, url: str, attempt: int, kwargs: dict[str, Any]
    ) -> tuple[float | None, Any]:
        """One try: ``(None, response)`` if done, else ``(seconds to wait, what went wrong)``."""
        where = sanitize_url(self._full(url, kwargs))
        try:
            response = self._read(method, url, kwargs)
        except httpx.LocalProtocolError as exc:
            raise FatalSourceError(
                f"{method} {where}: the request cannot be sent as written ({type(exc).__name__}); a header "
                "value (an API key or token) holds characters a header cannot carry, such as CR or LF"
            ) from None
        except httpx.TransportError as exc:  # timeouts are transport errors too
            what = type(exc).__name__
            log.warning("%s %s: %s (attempt %d)", method, where, what, attempt)
            return self.policy.backoff(attempt, self.pacing.rng), what
        except httpx.HTTPError as exc:  # a body that cannot be decoded, a redirect loop: no retry helps
            raise FatalSourceError(
                f"{method} {where}: the answer cannot be read ({type(exc).__name__}); "
                "the server breaks the HTTP contract"
            ) from None
        safe = sanitize_url(response.request.url)
        log.debug("%s %s -> HTTP %d", method, safe, response.status_code)
        if response.status_code == 429:
            wait = self._retry_after(response)
            log.warning("%s %s: HTTP 429, waiting %.1fs (attempt %d)", method, safe, wait, attempt)
            return wait, "HTTP 429"
        if response.is_success and _is_html(response) and _is_json(response):
            raise FatalSourceError(
                f"{method} {safe}: HTTP {response.status_code} with a JSON body labelled "
                f"{response.headers.get('content-type', '')[:60]!r}; the API promised application/json. "
                "The vendor (or a proxy) broke the contract: ask them to fix the content type"
            )
        if response.status_code >= 500 or (response.is_success and _is_html(response)):
            what = f"HTTP {response.status_code}" + (" (HTML body)" if _is_html(response) else "")
            log.warning("%s %s: %s (attempt %d)", method, safe, what, attempt)
            return self.policy.backoff(attempt, self.pacing.rng), what
        return None, response

    def _read(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        """The whole answer, read as a stream within the deadlines and the size limit."""
        now = self.pacing.wall()
        ends = min(now + self.policy.request_deadline_s, self.extract_ends)
        limit = self.policy.max_response_bytes
        with self._http.stream(method, url, **kwargs) as streamed:
            body = bytearray()
            for chunk in streamed.iter_bytes():  # decompressed: a gzip bomb is counted as it inflates
                body += chunk
                if len(body) > limit:
                    raise FatalSourceError(
                        f"{method} {sanitize_url(streamed.request.url)}: the answer exceeds "
                        f"{limit / 2**20:g} MiB (decompressed; option max_response_mb). A page this large "
                        "is a broken or hostile server; lower the page size or raise the limit if it is real"
                    )
                if self.pacing.wall() > ends:
                    self._deadline_passed(method, streamed.request.url, now, ends)
            if self.pacing.wall() > ends:
                self._deadline_passed(method, streamed.request.url, now, ends)
        headers = [
            (k, v)
            for k, v in streamed.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            streamed.status_code, headers=headers, content=bytes(body), request=streamed.request
        )

    def _deadline_passed(self, method: str, url: httpx.URL, started: float, ends: float) -> None:
        if ends >= self.extract_ends:
            self._extract_deadline_passed(method, url)
        raise RetriableError(
            f"{method} {sanitize_url(url)}: no complete answer within {ends - started:.0f}s (option "
            "request_deadline_s); the server is answering too slowly (trickling). Run again later"
        )

    def _check_extract_deadline(self, method: str, url: str, kwargs: Mapping[str, Any]) -> None:
        if self.pacing.wall() >= self.extract_ends:
            self._extract_deadline_passed(method, self._full(url, kwargs))

    def _extract_deadline_passed(self, method: str, url: str | httpx.URL) -> None:
        raise RetriableError(
            f"{method} {sanitize_url(url)}: the extraction ran past its deadline of "
            f"{self.policy.extract_deadline_s:.0f}s (option extract_deadline_s); nothing of this run is "
            "kept and the next run resumes from the last saved state"
        )

    def _retry_after(self, response: httpx.Response) -> float:
        """Seconds the server asked us to wait (delta or HTTP date), capped; backoff if unusable or absent."""
        raw = response.headers.get("Retry-After", "").strip()
        seconds: float | None = None
        try:
            seconds = float(raw)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw) if raw else None
            except (TypeError, ValueError, IndexError, OverflowError):
                when = None  # "soon-ish": not a number nor a date, so the default backoff applies
            if when is not None:
                seconds = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp() - time.time()
        if seconds is None or not math.isfinite(seconds):
            return self.policy.backoff(1, self.pacing.rng)
        return min(max(seconds, 0.0), self.policy.max_retry_after_s)

    def _may_wait(self, attempt: int, started: float, delay: float) -> bool:
        """Another attempt is allowed only if the attempts, the seconds budget and the deadline remain."""
        if attempt >= self.policy.max_attempts:
            return False
        if self.pacing.wall() + delay >= self.extract_ends:
            return False
        return self.pacing.clock() - started + delay <= self.policy.max_total_s

    @staticmethod
    def _full(url: str, kwargs: Mapping[str, Any]) -> httpx.URL:
        return httpx.URL(url, params=kwargs.get("params"))


def _is_html(response: httpx.Response) -> bool:
    """A gateway's error page: vendors' proxies answer with HTML where the API promised JSON."""
    return "html" in response.headers.get("content-type", "").lower()


def _is_json(response: httpx.Response) -> bool:
    """The body parses as JSON (an object or a list): an API answer, whatever its label says."""
    try:
        return isinstance(json.loads(response.content), (dict, list))
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return False


def prefetched(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``pages`` produced on a thread of its own, at most ``depth`` ahead of the consumer, in order.

    The producer fetches (and parses) the next page while the caller works on the previous one: waiting
    on the network, and C++ work without the GIL, overlap the caller's work. An exception the producer
    raises is raised here, after the items it produced before it. When the caller stops early (it
    raised, or broke off), the producer is told to stop and is waited for, so no request outlives the
    extraction. ``depth`` 0: no thread, ``pages`` as they are.
    """
    if depth <= 0:
        yield from pages
        return
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                if not _offer(queue, stop, ("page", page)):
                    return
            _offer(queue, stop, ("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            _offer(queue, stop, ("error", exc))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _offer(queue: Queue, stop: threading.Event, item: tuple[str, Any]) -> bool:
    """Put ``item`` unless the consumer has gone; ``False`` when it has."""
    while not stop.is_set():
        try:
            queue.put(item, timeout=0.1)
            return True
        except Full:
            continue
    return False
