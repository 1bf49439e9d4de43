"""Single values of a person-bearing record, parsed for matching: a birth date, a sex, a typo'd ID number.

Pure functions of one value each (`identity.records` applies them column by column); a value that cannot
be read gives None, never an exception.
"""

from __future__ import annotations

import datetime as dt
import re

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
