"""Shared HTTP plumbing for the REST connectors: timeouts, bounded retries, sanitised logs.

Vendor APIs fail in ordinary ways — a gateway answers 502/503 with an HTML page, a rate limiter answers
429 with ``Retry-After``, a socket hangs. ``HttpClient.request`` retries those with exponential backoff
and full jitter, inside a budget of attempts *and* seconds, and then raises ``RetriableError`` naming the
endpoint, the last status and the attempts made, so the operator knows to simply run again later. Every
other answer (2xx, and 4xx other than 429) is handed back: what a 401 or a vendor error code means is the
connector's business.

Only sanitised URLs and status codes are logged — never headers, tokens, request or response bodies.

Example::

    client = HttpClient("https://vendor.example/api/v2", RetryPolicy(max_attempts=3))
    response = client.request("GET", "/grids", params={"page": 1})
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from islandbridge.config import Secret
from islandbridge.connectors.base import Connector, Sink, Stream
from islandbridge.errors import ConfigError, FatalSourceError, RetriableError

log = logging.getLogger(__name__)
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
    the pipeline for an hour.
    """

    max_attempts: int = 5
    max_total_s: float = 120.0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

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
    rng: random.Random = field(default_factory=random.Random)


def policy_from_options(options: Mapping[str, Any], problems: list[str]) -> RetryPolicy:
    """Read the shared retry/timeout options of a connector, appending any problem to ``problems``.

    Options: ``timeout_s`` (read), ``connect_timeout_s``, ``max_attempts``, ``backoff_s``,
    ``max_retry_s`` (the total seconds budget of one request) and ``max_retry_after_s``.
    """
    default = RetryPolicy()
    names = {
        "read_timeout_s": "timeout_s",
        "connect_timeout_s": "connect_timeout_s",
        "max_attempts": "max_attempts",
        "backoff_s": "backoff_s",
        "max_total_s": "max_retry_s",
        "max_retry_after_s": "max_retry_after_s",
    }
    values: dict[str, Any] = {}
    for attr, option in names.items():
        raw = options.get(option, getattr(default, attr))
        kind = int if attr == "max_attempts" else float
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            value = None
        if value is None or value <= 0 or isinstance(raw, bool):
            problems.append(f"{option}: expected a positive {kind.__name__}, got {raw!r}")
            continue
        values[attr] = value
    return RetryPolicy(**values)


def int_option(
    options: Mapping[str, Any], name: str, default: int, low: int, high: int, problems: list[str]
) -> int:
    """An integer option within ``low..high``; a problem is appended (and the default used) otherwise."""
    raw = options.get(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or isinstance(raw, bool) or not low <= value <= high:
        problems.append(f"{name}: expected an integer in {low}..{high}, got {raw!r}")
        return default
    return value


def reveal_secret(options: Mapping[str, Any], name: str, problems: list[str]) -> Secret | None:
    """The ``Secret`` option ``name``; a plain string is refused so a secret never sits in a config file."""
    value = options.get(name)
    if isinstance(value, Secret):
        return value
    if value not in (None, ""):
        problems.append(f"{name}: write a reference such as {{env: NAME}}, not the secret itself")
    return None


class RestConnector(Connector):
    """The option handling the vendor REST connectors share: retries, overlap, page bound, base URL.

    Subclasses name their secret option and add their own options in ``configure``.
    """

    secret_option: ClassVar[str]
    default_max_pages: ClassVar[int] = 10_000

    def __init__(self, settings) -> None:
        super().__init__(settings)
        problems: list[str] = []
        self.secret = reveal_secret(self.options, self.secret_option, problems)
        self.policy = policy_from_options(self.options, problems)
        self.overlap_s = int_option(self.options, "overlap_s", 0, 0, 86_400 * 7, problems)
        self.max_pages = int_option(self.options, "max_pages", self.default_max_pages, 1, 10**7, problems)
        self.configure(problems)
        if problems:
            raise ConfigError(f"sources.{self.name} ({self.kind}): " + "; ".join(problems))
        self.base_url = str(self.options["base_url"]).rstrip("/")
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
    ``RetriableError`` is raised. Use as a context manager or call ``close``.
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

        Raises ``RetriableError`` when the budget is spent. The response of a non-transient answer is
        returned with its body read, whatever its status.
        """
        url = self.base_url + path
        started = self.pacing.clock()
        attempt, last = 0, "no answer"
        while True:
            attempt += 1
            delay, last = self._attempt(method, url, attempt, kwargs)
            if delay is None:
                return last  # type: ignore[return-value]
            if not self._may_wait(attempt, started, delay):
                raise RetriableError(
                    f"{method} {sanitize_url(self._full(url, kwargs))}: gave up after {attempt} attempt(s) "
                    f"in {self.pacing.clock() - started:.1f}s; last answer: {last}. "
                    "The source is unavailable or throttling us; run again later."
                )
            self.pacing.sleep(delay)

    def _attempt(
        self, method: str, url: str, attempt: int, kwargs: dict[str, Any]
    ) -> tuple[float | None, Any]:
        """One try: ``(None, response)`` if done, else ``(seconds to wait, what went wrong)``."""
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # timeouts are transport errors too
            what = type(exc).__name__
            log.warning(
                "%s %s: %s (attempt %d)", method, sanitize_url(self._full(url, kwargs)), what, attempt
            )
            return self.policy.backoff(attempt, self.pacing.rng), what
        safe = sanitize_url(response.request.url)
        log.debug("%s %s -> HTTP %d", method, safe, response.status_code)
        if response.status_code == 429:
            wait = self._retry_after(response)
            log.warning("%s %s: HTTP 429, waiting %.1fs (attempt %d)", method, safe, wait, attempt)
            return wait, "HTTP 429"
        if response.status_code >= 500 or (response.is_success and _is_html(response)):
            what = f"HTTP {response.status_code}" + (" (HTML body)" if _is_html(response) else "")
            log.warning("%s %s: %s (attempt %d)", method, safe, what, attempt)
            return self.policy.backoff(attempt, self.pacing.rng), what
        return None, response

    def _retry_after(self, response: httpx.Response) -> float:
        """Seconds the server asked us to wait (delta or HTTP date), capped; backoff if it gave none."""
        raw = response.headers.get("Retry-After", "").strip()
        seconds: float | None = None
        try:
            seconds = float(raw)
        except ValueError:
            when = email.utils.parsedate_to_datetime(raw) if raw else None
            if when is not None:
                seconds = when.timestamp() - time.time()
        if seconds is None:
            return self.policy.backoff(1, self.pacing.rng)
        return min(max(seconds, 0.0), self.policy.max_retry_after_s)

    def _may_wait(self, attempt: int, started: float, delay: float) -> bool:
        """Another attempt is allowed only if both the attempts and the seconds budget remain."""
        if attempt >= self.policy.max_attempts:
            return False
        return self.pacing.clock() - started + delay <= self.policy.max_total_s

    @staticmethod
    def _full(url: str, kwargs: Mapping[str, Any]) -> httpx.URL:
        return httpx.URL(url, params=kwargs.get("params"))


def _is_html(response: httpx.Response) -> bool:
    """A gateway's error page: vendors' proxies answer with HTML where the API promised JSON."""
    return "html" in response.headers.get("content-type", "").lower()


# -- incremental lists ----------------------------------------------------------------------------------
# Both vendors page a list ordered by (version time, id) with an inclusive lower bound on the version
# time, and move an edited record to the end of the list. The two helpers below read such a list so that
# an edit during paging loses nothing and a re-run lands nothing twice.


@dataclass(frozen=True)
class VersionClock:
    """How a vendor writes the version time of a record: ``parse`` its text, ``render`` a query value."""

    parse: Callable[[Any], dt.datetime | None]
    render: Callable[[dt.datetime], str]


class VersionedStream:
    """Dedupe and watermark bookkeeping for one stream read by version time, inclusive (``>=``).

    ``state`` is what ``finish`` returned last time: the watermark (highest version landed) and the
    ``(id, version)`` pairs landed at, or within ``overlap_s`` before, it. Within a run the newest version
    of an id is kept; an older one read earlier is counted as a duplicate (superseded), so a run lands
    at most one row per record key and every item read is landed, quarantined or counted.
    """

    def __init__(
        self, stream: Stream, field: str, clock: VersionClock, state: Mapping[str, Any], overlap_s: int = 0
    ) -> None:
        self.stream, self.field, self.clock, self.overlap_s = stream, field, clock, overlap_s
        self.watermark: str | None = state.get("watermark")
        self.landed_before = {(str(i), str(t)) for i, t in state.get("boundary", [])}
        self.latest: dict[str, tuple[dt.datetime, Mapping[str, Any]]] = {}

    def since(self) -> str | None:
        """The lower bound of this run's request: the watermark, less the overlap."""
        moment = self.clock.parse(self.watermark) if self.watermark else None
        return self.clock.render(moment - dt.timedelta(seconds=self.overlap_s)) if moment else None

    def take(self, sink: Sink, item: Mapping[str, Any]) -> None:
        """Count one item read and decide: quarantine, duplicate, or hold it as the newest version."""
        name = self.stream.name
        sink.read(name)
        key, version = str(item.get(self.stream.key) or "").strip(), item.get(self.field)
        moment = self.clock.parse(version)
        if not key or moment is None:
            why = (
                f"{self.stream.key} is missing"
                if not key
                else f"{self.field} {version!r} is not a valid time"
            )
            sink.quarantine(name, f"{self.stream.key_prefix or name}:{key}", why + ": cannot sync it", item)
            return
        held = self.latest.get(key)
        if (key, str(version)) in self.landed_before or (held is not None and held[0] >= moment):
            sink.duplicate(name)  # re-read at the inclusive boundary, or by the keyset re-read
            return
        if held is not None:
            sink.duplicate(name)  # the older version read earlier in this run is superseded
        self.latest[key] = (moment, item)

    def finish(self, sink: Sink) -> dict[str, Any]:
        """Land the held records and return the next state."""
        sink.write(self.stream.name, (item for _, item in self.latest.values()))
        versions = {(k, str(item[self.field])): m for k, (m, item) in self.latest.items()}
        versions.update({v: m for v in self.landed_before if (m := self.clock.parse(v[1])) is not None})
        if not versions:
            return {"watermark": self.watermark, "boundary": []}
        top = max(versions, key=lambda v: versions[v])
        floor = versions[top] - dt.timedelta(seconds=self.overlap_s)
        boundary = sorted([k, t] for (k, t), m in versions.items() if m >= floor)
        return {"watermark": top[1], "boundary": boundary}


def keyset_items(
    fetch: Callable[[str | None, int], list[dict]],
    *,
    field: str,
    clock: VersionClock,
    since: str | None,
    until: dt.datetime,
    page_size: int,
    max_pages: int,
    what: str,
) -> Iterator[dict]:
    """Every item with ``since <= version <= until``, read keyset-style from ``fetch(lower_bound, page)``.

    Page numbers over a list whose edited records move to its end would skip records, so after each
    page we ask again from the last version seen, page 1 (``VersionedStream`` drops the re-read items).
    Only when a full page shares one version (the bound cannot advance) do we step to the next page.
    Items after ``until`` are left for the next run. Raises ``RetriableError`` after ``max_pages``
    and ``FatalSourceError`` if the list is not ordered by version, which would make this unsafe.
    """
    bound, page, previous = since, 1, None
    for _ in range(max_pages):
        items = fetch(bound, page)
        for item in items:
            moment = clock.parse(item.get(field))
            if moment is not None and previous is not None and moment < previous:
                raise FatalSourceError(
                    f"{what}: the list is not ordered by {field}; incremental paging is unsafe"
                )
            if moment is not None and moment > until:
                return  # ordered: everything after this is beyond the as-of too
            previous = moment or previous
            yield item
        if len(items) < page_size:
            return
        last = clock.render(previous) if previous else bound
        bound, page = (bound, page + 1) if last == bound else (last, 1)
    raise RetriableError(
        f"{what}: still paging after {max_pages} pages (the list keeps changing); "
        "run again later or raise max_pages"
    )
