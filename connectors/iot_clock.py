"""The IoT event log's broken-clock rule: which ``ts`` (epoch ms, UTC) a device could not have sent.

A device with a broken clock sends ``ts`` = 0 (1970) or a time far in the future. Before 2000-01-01 is
always broken. *How far* in the future is broken depends on when the event arrived, not on the run's
as-of: a run reads the log as it is when it reads it, and a backfill of a past day (or a first run set up
after a week of operation) reads events that arrived days after its as-of. The log carries no arrival
time, but it is in arrival order, so its own events say roughly when each part of it arrived:

* the **reference** of a page is the (lower) median ``ts`` of its plausible events (finite numbers on or
  after 2000-01-01), when it has at least ``TRUSTED_PAGE`` of them: most events arrive seconds after they
  happen, up to ~2 days late, so the median lies at or a little before the page's arrival; a broken clock
  would have to be more than half of a page to move it;
* it is never later than the moment the page was read (nothing arrived after that), and it is carried
  forward as a running maximum: over the pages of a run (a tiny page, or a page of broken events, keeps
  the reference of the pages before it) and from run to run (``reference_ms`` in the events state);
* the limit is ``reference + FUTURE_SLACK`` when the reference is more than ``READ_LATE`` (an hour) after
  the as-of — the log was read late: a backfill, or a run days behind — and ``as_of + FUTURE_SLACK``
  otherwise.

A daily run read shortly after its as-of T finds page medians around T (a busy log read minutes after T
can put the last page's median a little after it), so its limit is the as-of's (T + 1 day), exactly as
before the reference existed. A backfill read weeks later lands the real events of the days after its as-of
and still quarantines 2027-12-24 or 2100-01-01 (the simulator's broken clocks) or a year ahead.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.connectors.paging import safe_text

EARLIEST_TS = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
EARLIEST_MS = int(EARLIEST_TS.timestamp() * 1000)
FUTURE_SLACK = dt.timedelta(days=1)
SLACK_MS = int(FUTURE_SLACK.total_seconds() * 1000)
#: A page with fewer plausible events than this does not move the reference (too few to trust).
TRUSTED_PAGE = 100
#: A reference this far after the as-of means the log was read late (a backfill, a run days behind).
READ_LATE = dt.timedelta(hours=1)
READ_LATE_MS = int(READ_LATE.total_seconds() * 1000)
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def read_now_ms() -> int:
    """The moment a page is read (epoch ms): no event of it arrived later. Tests replace it."""
    return int(time.time() * 1000)


class ArrivalReference:
    """The running estimate of when the part of the log being read arrived (epoch ms, or ``None``).

    ``observe`` a page's ``ts`` values before deciding its events; ``ms`` is then the reference for them.
    """

    def __init__(self, carried: Any = None) -> None:
        # a carried value is bounded like a page's median: a state edited, or saved by a host whose clock
        # ran ahead, must not open the limit for years of broken clocks
        self.ms: int | None = (
            min(carried, read_now_ms()) if type(carried) is int and carried >= EARLIEST_MS else None
        )

    def observe_column(self, ts: pa.ChunkedArray | pa.Array) -> int | None:
        """An Arrow-read page's ``ts`` column (int64, nulls allowed)."""
        values = pc.drop_null(ts).to_numpy(zero_copy_only=False)
        values = values[values >= EARLIEST_MS]
        if len(values) >= TRUSTED_PAGE:
            k = (len(values) - 1) // 2
            self._raise(int(np.partition(values, k)[k]))
        return self.ms

    def observe(self, ts: Iterable[Any]) -> int | None:
        """A page's ``ts`` values as Python's JSON reader gave them (anything)."""
        values = sorted(
            v for v in ts if (type(v) is int or (type(v) is float and math.isfinite(v))) and v >= EARLIEST_MS
        )
        if len(values) >= TRUSTED_PAGE:
            self._raise(math.floor(values[(len(values) - 1) // 2]))
        return self.ms

    def _raise(self, median: int) -> None:
        median = min(median, read_now_ms())
        if self.ms is None or median > self.ms:
            self.ms = median


def clock_bounds(as_of: dt.datetime, reference_ms: int | None = None) -> tuple[float, float]:
    """The epoch milliseconds an event's ``ts`` must lie within (inclusive) for ``clock_problem`` to find
    nothing: 2000-01-01, and one day after the reference of a log read late, else after the as-of."""
    return EARLIEST_TS.timestamp() * 1000, _base_ms(as_of, reference_ms) + SLACK_MS


def read_late(as_of: dt.datetime, reference_ms: int | None) -> bool:
    """Whether a log whose read part arrived up to ``reference_ms`` was read late: more than ``READ_LATE``
    after ``as_of`` (a backfill, a run days behind). The connector, the gate's ``arrival`` bound, the flow
    volume check and ``core.device_events`` (in SQL) all ask this."""
    return reference_ms is not None and reference_ms > as_of.timestamp() * 1000 + READ_LATE_MS


def _base_ms(as_of: dt.datetime, reference_ms: int | None) -> float:
    """What the future limit counts from: the reference when the log was read late, else the as-of."""
    return reference_ms if read_late(as_of, reference_ms) else as_of.timestamp() * 1000


def clock_problem(ts: Any, as_of: dt.datetime, reference_ms: int | None = None) -> str | None:
    """Why an event's ``ts`` (epoch ms, UTC) cannot be believed, or ``None`` if it can.

    Rules: on or after 2000-01-01, and at most one day after the run's as-of or, when the log was read
    more than an hour after it, after ``reference_ms`` (when this part of the log arrived, see the module
    docstring). Late events are fine.
    """
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        return f"ts {safe_text(repr(ts))[:60]} is not epoch milliseconds"
    if isinstance(ts, float) and not math.isfinite(ts):
        return f"ts={ts} is not a finite number: broken device clock"
    if ts == 0:
        return "ts=0 (1970-01-01T00:00:00Z): device clock unset; rule: ts must be on or after 2000-01-01"
    # Compare as numbers first: a ts like 1e20 is beyond any datetime and cannot become one.
    if ts < EARLIEST_TS.timestamp() * 1000:
        return f"ts={ts} ({utc_text(ts)}) is before 2000-01-01: broken device clock"
    base = _base_ms(as_of, reference_ms)
    if ts > base + SLACK_MS:
        if base > as_of.timestamp() * 1000:
            after = (
                f"the log's arrival time {utc_text(base)} (the median ts of the pages read, later than the "
                f"as-of {as_of.astimezone(dt.UTC).strftime(UTC_FORMAT)})"
            )
        else:
            after = "the as-of"
        return (
            f"ts={ts} ({utc_text(ts)}) is more than 1 day after {after} "
            f"(limit {utc_text(base + SLACK_MS)}): broken device clock"
        )
    return None


def utc_text(ts: float) -> str:
    """Epoch milliseconds as UTC text, or ``out of range`` when no calendar date has it."""
    try:
        return (dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(milliseconds=ts)).strftime(UTC_FORMAT)
    except (OverflowError, ValueError):
        return "out of any calendar's range"
