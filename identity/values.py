"""Single values of a person-bearing record, parsed for matching: a birth date, a sex, a typo'd ID number.

Pure functions of one value each (`identity.records` applies them column by column); a value that cannot
be read gives None, never an exception.
"""

from __future__ import annotations

import datetime as dt
import re

from stdnum.cn import ric

from islandbridge.transforms.normalize import drop_blanks, fold


def born_by(as_of: dt.datetime, min_age: int | None) -> str | None:
    """The latest birth date (``YYYY-MM-DD``) of someone at least ``min_age`` at ``as_of``; None for no bound."""
    if min_age is None:
        return None
    day = as_of.date()
    try:
        return day.replace(year=day.year - min_age).isoformat()
    except ValueError:  # 29 February
        return day.replace(year=day.year - min_age, day=28).isoformat()


def id_digits(raw: object) -> str | None:
    """The cleaned characters of an ID number whose check digit fails (a typo), for near-comparison."""
    if not isinstance(raw, str):
        return None
    text = drop_blanks(fold(raw)).lstrip("'`‘’").upper()
    return text if len(text) == 18 else None


def parse_birth(raw: object) -> tuple[str | None, str | None]:
    """(``YYYY-MM-DD``, ``YYYY-MM``) of a declared birth date: ``1944-01-18``, ``19440118``, ``1944.01``."""
    if not isinstance(raw, str):
        return None, None
    digits = re.sub(r"[^0-9]", "", fold(raw))
    try:
        if len(digits) == 8:
            day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            return day.isoformat(), day.isoformat()[:7]
        if len(digits) == 6 and 1 <= int(digits[4:]) <= 12:
            return None, f"{digits[:4]}-{digits[4:]}"
    except ValueError:
        return None, None
    return None, None


_SEXES = {"1": "M", "2": "F", "男": "M", "女": "F", "M": "M", "F": "F"}


def parse_sex(raw: object) -> str | None:
    """``M``/``F`` from the registry's ``1``/``2`` or the ``男``/``女`` of the grid and the rosters."""
    return _SEXES.get(fold(raw).upper()) if isinstance(raw, str) else None


OLDEST = 100  # years: a 15-digit number whose 19yy reading is at least this old is read 20yy (see below)


def legacy_century(number: str, declared: object, as_of: dt.datetime) -> str:
    """The 18-digit number a legacy 15-digit one stands for, given its upgrade with century 19 (``number``).

    A 15-digit number has no century; the standard upgrade (GB 11643-1999) inserts ``19``. The sources
    also hold 15-digit forms of children's numbers, whose 19yy reading makes a ten-year-old 110 and
    contradicts every other record of the child. The record's own declared birth date says which
    century is meant when it gives the same day; without one, a 19yy reading that makes the holder
    `OLDEST` or older reads 20yy when that date is not after ``as_of``. A centenarian's legacy number
    read wrongly can only miss a link (its number then differs from the one the registry holds), never
    make one.

    >>> legacy_century("110101191501010015", None, dt.datetime(2026, 11, 20))
    '110101201501010011'
    """
    born_20 = _date(f"20{number[8:14]}")
    if born_20 is None:
        return number
    upgraded = number[:6] + born_20.strftime("%Y%m%d") + number[14:17]
    upgraded += ric.calc_check_digit(upgraded + "0")
    said = parse_birth(declared)[0]
    if said is not None:
        return upgraded if said == born_20.isoformat() else number
    born_19 = _date(number[6:14])
    oldest = born_by(as_of, OLDEST)
    if (
        born_19 is not None
        and oldest is not None
        and born_19.isoformat() <= oldest
        and born_20 <= as_of.date()
    ):
        return upgraded
    return number


def _date(yyyymmdd: str) -> dt.date | None:
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None
