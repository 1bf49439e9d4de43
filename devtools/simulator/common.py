"""Helpers shared by the simulator's writers: seeded randomness, local time, small text transforms.

Everything random in the simulator comes from :func:`sub_rng`, one ``random.Random`` per concern, seeded
from the street's seed and the concern's name. Seeding per concern (rather than threading one generator
through every writer) keeps a change in one system's writer from reshuffling every other system's output.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

# Asia/Shanghai has had no daylight saving since 1991, so a fixed offset is exact and needs no tzdata.
LOCAL_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def sub_rng(seed: int, concern: str) -> random.Random:
    """A generator for one concern of one street: same seed and concern, same sequence, on any machine.

    ``random.Random`` seeded with a ``str`` hashes it with SHA-512, independent of ``PYTHONHASHSEED``.
    """
    return random.Random(f"islandbridge-simulator:{seed}:{concern}")


def randint(rng: random.Random, low: int, high: int) -> int:
    """Like ``rng.randint(low, high)`` at a fifth of the cost, which matters at 300,000 residents."""
    return low + int(rng.random() * (high - low + 1))


def to_fullwidth(text: str) -> str:
    """ASCII digits → full-width digits (``501`` → ``５０１``), as typed with a Chinese input method."""
    return text.translate(_FULLWIDTH)


def local_text(moment: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in local time, the way the registry and the grid platform write times."""
    m = moment if moment.tzinfo is LOCAL_TZ else moment.astimezone(LOCAL_TZ)
    # Formatted by hand: strftime is the slowest step when 300,000 residents are written.
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d}"


def utc_text(moment: dt.datetime) -> str:
    """ISO 8601 UTC with a ``Z``, the way the IoT platform writes times."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ)


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` away from ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A uniform date in ``[start, end]`` (``end`` if the range is empty)."""
    span = (end - start).days
    return end if span <= 0 else start + dt.timedelta(days=int(rng.random() * (span + 1)))


def random_stamp(rng: random.Random, day: dt.date) -> str:
    """A local office-hours moment on ``day`` as ``YYYY-MM-DD HH:MM:SS``: registry clerks edit by day.

    Stamps of one format compare in time order as plain strings.
    """
    seconds = 8 * 3600 + int(rng.random() * 12 * 3600)
    return f"{day.isoformat()} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Chooser:
    """Weighted choice over a fixed table, precomputed once because it runs per record at 300k scale.

    >>> Chooser({"a": 3, "b": 1}).pick(random.Random(1)) in {"a", "b"}
    True
    """

    def __init__(self, table: dict[str, float]) -> None:
        self.kinds = list(table)
        self._cum = list(itertools.accumulate(table.values()))

    def pick(self, rng: random.Random) -> str:
        return self.kinds[bisect.bisect_right(self._cum, rng.random() * self._cum[-1])]


def ensure_each(
    rng: random.Random,
    kinds: list[str],
    required: Iterable[str],
    default: str | tuple[str, ...],
    eligible: Callable[[int, str], bool] = lambda _i, _k: True,
) -> None:
    """Make every ``required`` kind occur at least once in ``kinds`` (edited in place).

    A quirk drawn at a realistic rate of 1-3 % may not occur at all in a 300-resident street, yet tests
    and connectors must meet every quirk. A kind counts as present only on a record ``eligible`` for it
    (a lowercase ``x`` needs an ID that ends in X; a phone format needs a phone); a missing kind
    replaces a ``default`` entry (or an entry of one of several ``default`` kinds) of an eligible
    record. Kinds no record is eligible for stay absent, which the caller prevents by construction.
    """
    replaceable = (default,) if isinstance(default, str) else default
    for kind in required:
        if any(k == kind and eligible(i, kind) for i, k in enumerate(kinds)):
            continue
        spots = [i for i, k in enumerate(kinds) if k in replaceable and eligible(i, kind)]
        if spots:
            kinds[rng.choice(spots)] = kind


def write_json_list(path: Path, items: Sequence[dict]) -> None:
    """One JSON list on one line, UTF-8, as the vendors' exports in ``samples/`` are written."""
    path.write_text(json.dumps(list(items), ensure_ascii=False), encoding="utf-8")
