"""The run's as-of instant T: reading it from an operator or a schedule, and the local day it ends.

Every step of a run is bound to T (the end of its data interval). `parse_as_of` reads a date or an ISO
date-time (a bare date is the end of that day in Asia/Shanghai, ``LOCAL_TZ``); `resolve_as_of` picks T
from a given as-of, a data interval or the run's start; `local_day` is the date T ends; `sync_command` is the command that completes T's day, advised
wherever a day is found unfinished.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from zoneinfo import ZoneInfo

from islandbridge.errors import ConfigError, typed

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}")  # YYYY-MM-DD or YYYYMMDD
_TIME = r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d{1,6})?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
_AS_OF_SHAPE = re.compile(rf"(?:{_DAY.pattern})(?:{_TIME})?")
_DATE_TIME = re.compile(rf"(?:{_DAY.pattern})[T ]\d{{2}}.*")  # a date, then a time of day
AS_OF_HELP = (
    "expected a date YYYY-MM-DD or YYYYMMDD (the end of that day, Asia/Shanghai) "
    "or an ISO 8601 date-time such as 2026-11-20T16:00:00+00:00"
)


def parse_as_of(text: str | dt.date | dt.datetime) -> dt.datetime:
    """The run's as-of instant as an aware datetime; naive input is Asia/Shanghai local time.

    A bare date, ``YYYY-MM-DD`` or ``YYYYMMDD``, means the end of that day (``2026-11-20`` and
    ``20261120`` → ``2026-11-21T00:00+08:00``), which is what an operator means by "as of the 20th". A
    date-time is that instant. Anything else (a month, a week date, a date cut off after ``T``,
    ``20 Nov``) is refused with ``ConfigError`` rather than guessed.
    """
    shown = typed(str(text).strip(), _AS_OF_SHAPE)
    if isinstance(text, dt.datetime):
        value = text
    elif isinstance(text, dt.date):
        value = dt.datetime.combine(text + dt.timedelta(days=1), dt.time())
    else:
        given = str(text).strip()
        day = _DAY.fullmatch(given)
        if not day and not _DATE_TIME.fullmatch(given):
            raise ConfigError(f"as-of {shown}: {AS_OF_HELP}")
        try:
            value = dt.datetime.fromisoformat(given)
            if day:
                value += dt.timedelta(days=1)
        except (ValueError, OverflowError) as exc:  # OverflowError: the day after 9999-12-31
            why = f"{exc}; " if given not in str(exc) else ""  # not a date after all: 87654321 is a landline
            raise ConfigError(f"as-of {typed(given, re.compile('(?!)'))}: {why}{AS_OF_HELP}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    try:  # every step reads T in UTC and in local time: both must exist (not 0001-01-01 at +14:00)
        value.astimezone(dt.UTC), value.astimezone(LOCAL_TZ)
    except OverflowError as exc:
        raise ConfigError(f"as-of {shown}: {exc}; {AS_OF_HELP}") from None
    return value


def local_day(as_of: dt.datetime) -> dt.date:
    """The Asia/Shanghai date that the as-of instant ``as_of`` ends: the date of the instant before it
    (``2026-11-21 00:00+08:00`` ends 2026-11-20)."""
    return (as_of - dt.timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()


def as_of_argument(as_of: dt.datetime) -> str:
    """The ``--as-of`` that names ``as_of`` again: the day it ends (``2026-11-20`` for 2026-11-21 00:00
    +08:00), or the instant itself when it is not a midnight in Asia/Shanghai."""
    local = as_of.astimezone(LOCAL_TZ)
    if local.time() == dt.time(0):
        return local_day(as_of).isoformat()
    return local.isoformat()


def sync_command(as_of: dt.datetime, config: str | None = None) -> str:
    """The command that completes ``as_of``'s day, whatever step it stopped before: `islandbridge sync`
    extracts, loads, reconciles, builds, exports and publishes the day (a step alone, such as ``build``,
    refuses a day whose identities are not the newest). Runnable as printed: with ``--config config``
    (shell quoted) when the operator named a configuration, none when the default finds it. `islandbridge
    runs`, and the build, export and publish that refuse a day, all advise it."""
    option = f" --config {shlex.quote(config)}" if config else ""
    return f"islandbridge sync{option} --as-of {as_of_argument(as_of)}"


def resolve_as_of(
    as_of: str | dt.date | dt.datetime | None,
    data_interval_end: dt.datetime | None = None,
    started_at: dt.datetime | None = None,
) -> dt.datetime:
    """A scheduled or manual run's as-of instant T, by precedence.

    1. ``as_of`` given (the DAG's ``as_of`` param, ``--as-of``): `parse_as_of` of it.
    2. else the run's ``data_interval_end`` (a scheduled run, or a manual one given a logical date).
    3. else the end of *yesterday* in Asia/Shanghai as seen at ``started_at`` (the run's start, or its
       logical date): a manual run with no date covers the last complete local day.

    Raises ``ConfigError`` if ``as_of`` cannot be read or nothing is given to resolve T from.
    """
    if as_of not in (None, ""):
        return parse_as_of(as_of)
    if data_interval_end is not None:
        return data_interval_end
    if started_at is None:
        raise ConfigError("no as-of: give a date (as_of, --as-of), a data interval or the run's start time")
    if started_at.tzinfo is None:
        raise ConfigError(f"the run's start time {started_at.isoformat()} has no time zone")
    today = started_at.astimezone(LOCAL_TZ).date()
    return dt.datetime.combine(today, dt.time(), LOCAL_TZ)
