"""Resident ID-card numbers (居民身份证号码, GB 11643-1999) as the four systems hold them.

``normalize_id`` sorts every value into one `kind`:

=====================  ===================================================================================
``full``               18 characters, check digit and birth date valid: ``value`` is the canonical number
``legacy15_upgraded``  a first-generation 15-digit number, upgraded to its 18-digit form in ``value``
``masked``             the grid platform's ``510104********0696``: only ``prefix``/``suffix`` are known
``excel_damaged``      went through a spreadsheet float (``5.11403E+17``, ``...187000.0``): digits are lost,
                       so it identifies nobody and is never repaired; from a spreadsheet-made file
                       (``spreadsheet=True``) also 18 digits ending in ``000``, check digit or not
``passport``           a passport number of a foreign resident (``E12345678``), in ``passport``
``invalid_checksum``   looks like a number but the check digit fails (a typo): never used to link
``missing``            NULL, blank or a placeholder such as ``无``
``garbage``            anything else
=====================  ===================================================================================

Reasons are meant for logs and quality reports, so they never quote the number itself.

**The trailing-000 rule for spreadsheets.** Excel keeps 15 significant digits of a number, so an 18-digit
ID typed into a number cell and saved with a ``0`` format comes out as its first 15 digits and ``000``
(``360102200210121000``); one such number in eleven still passes the check digit and would read as a
real, *different* person's ID. A genuine ID ends in ``000`` only when its sequence number ends in ``00``
and its check digit is ``0`` (about one in eleven thousand). A wrong link is worse than a missed one, so
values from the civil-affairs rosters (files typed in Excel: ``spreadsheet=True``) that are 18 digits
ending in ``000`` are ``excel_damaged`` whatever their check digit; the registry's and grid platform's
numbers are typed into databases and keep the check-digit rule.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import NamedTuple

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from islandbridge.transforms.normalize._text import drop_blanks, fold, is_placeholder

KINDS = (
    "full",
    "legacy15_upgraded",
    "masked",
    "excel_damaged",
    "passport",
    "invalid_checksum",
    "missing",
    "garbage",
)

_DIGITS17_CHECK = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS15 = re.compile(r"[0-9]{15}")
_MASKED = re.compile(r"([0-9]*)(\*+)([0-9]*X?)")
# A spreadsheet float of a 15- or 18-digit number: `5.11403E+17`, `4.201021959100794e+17`,
# `511403194401187000.0`. Exponent and integer part are bounded so that "1.5" stays garbage.
_SCIENTIFIC = re.compile(r"[0-9](?:\.[0-9]*)?E\+?1[3-8]")
_DECIMAL = re.compile(r"[0-9]{14,18}\.[0-9]*")
# Chinese ordinary passports are E/G + 8 digits (EA1234567 since 2019); foreign ones vary, so accept
# one or two letters and digits, 8 or 9 characters in all, which never collides with a 15/18-digit RIC.
_PASSPORT = re.compile(r"(?=[A-Z0-9]{8,9}$)[A-Z]{1,2}[0-9]{6,8}")
# A birth year outside this range cannot be a living resident's: the number is not what it seems.
_YEARS = range(1900, 2100)


class IdResult(NamedTuple):
    """One ID-card field, normalised. Only ``full`` and ``legacy15_upgraded`` are usable identifiers."""

    kind: str
    value: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    mask_length: int | None = None
    birth_date: dt.date | None = None
    sex: str | None = None
    region: str | None = None
    passport: str | None = None
    reason: str | None = None

    @property
    def is_valid(self) -> bool:
        """True when ``value`` holds a checksum-valid 18-digit number."""
        return self.value is not None

    @property
    def canonical(self) -> str | None:
        """The text to store: the 18-digit number, the masked form, or the passport number."""
        if self.kind == "masked":
            return f"{self.prefix}{'*' * (self.mask_length or 0)}{self.suffix}"
        return self.value or self.passport


def normalize_id(raw: object, *, spreadsheet: bool = False) -> IdResult:
    """Classify and canonicalise one ID-card field; total (never raises) and idempotent on `canonical`.

    `raw` is normally ``str | None``; a ``float`` (what openpyxl hands over for a number cell) is always
    Excel damage, an ``int`` is read as its digits. Spaces anywhere (also U+3000), a leading apostrophe,
    full-width characters and a lower-case ``x`` are cleaned first. ``spreadsheet``: the value comes from
    a file people type in Excel (the civil-affairs rosters), so 18 digits ending in ``000`` are damage.

    >>> normalize_id("'110101 19900307 002x ").kind
    'full'
    >>> normalize_id("5.11403E+17").kind
    'excel_damaged'
    """
    if raw is None:
        return IdResult("missing", reason="no value")
    if isinstance(raw, float):
        return IdResult("excel_damaged", reason="a spreadsheet float: the last digits are lost")
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        return IdResult("garbage", reason=f"unexpected type {type(raw).__name__}")
    text = drop_blanks(fold(raw)).lstrip("'`‘’").upper()
    if spreadsheet and _DIGITS17_CHECK.fullmatch(text) and text.endswith("000"):
        return IdResult(
            "excel_damaged",
            reason="18 digits ending in 000 in a spreadsheet: what Excel leaves of a number cell's ID",
        )
    return _classify(text)


def _classify(text: str) -> IdResult:
    if is_placeholder(text):
        return IdResult("missing", reason="empty or a placeholder")
    if _DIGITS17_CHECK.fullmatch(text):
        return _from_18(text)
    if _DIGITS15.fullmatch(text):
        return _upgrade_15(text)
    if _SCIENTIFIC.fullmatch(text):
        return IdResult("excel_damaged", reason="scientific notation: the last digits are lost")
    if _DECIMAL.fullmatch(text):
        return IdResult(
            "excel_damaged", reason="a decimal point: the number went through a spreadsheet float"
        )
    if masked := _MASKED.fullmatch(text):
        return _from_masked(*masked.groups())
    if _PASSPORT.match(text):
        return IdResult("passport", passport=text, reason="a passport number, not a resident ID card")
    return IdResult("garbage", reason=f"not an ID-card number ({_shape(text)})")


def _from_18(number: str) -> IdResult:
    if number[-1] != ric.calc_check_digit(number):
        hint = "; it ends in 000, maybe a spreadsheet float" if number.endswith("000") else ""
        return IdResult("invalid_checksum", reason=f"the check digit does not match{hint}")
    born = _birth_date(number)
    if born is None:
        return IdResult("garbage", reason="the check digit matches but the birth date is not a real date")
    # ric.validate() would also check the region code against the county's dates of validity, compared
    # with the *birth* year; codes are assigned at issue and kept for life, so that rejects real numbers.
    sex = "M" if int(number[16]) % 2 else "F"
    return IdResult("full", value=number, birth_date=born, sex=sex, region=number[:6])


def _upgrade_15(number: str) -> IdResult:
    """GB 11643-1999 upgrade of a 1980s 15-digit number: insert century ``19`` and append the check digit.

    stdnum 2.2 has no helper for 15-digit numbers; its `calc_check_digit` ignores the last character of
    what it is given, so the 17 digits are passed with a placeholder.
    """
    body = f"{number[:6]}19{number[6:]}"
    upgraded = _from_18(body + ric.calc_check_digit(body + "0"))
    if upgraded.kind != "full":
        return IdResult("garbage", reason="a 15-digit number whose birth date is not a real date")
    return IdResult(
        "legacy15_upgraded",
        value=upgraded.value,
        birth_date=upgraded.birth_date,
        sex=upgraded.sex,
        region=upgraded.region,
        reason="a legacy 15-digit number upgraded to 18 digits",
    )


def _from_masked(prefix: str, stars: str, suffix: str) -> IdResult:
    if len(prefix) + len(stars) + len(suffix) not in (15, 18):
        return IdResult("garbage", reason="a masked value of the wrong length")
    if not prefix and not suffix:
        return IdResult("missing", reason="fully masked")
    region = prefix[:6] if len(prefix) >= 6 else None
    return IdResult(
        "masked",
        prefix=prefix,
        suffix=suffix,
        mask_length=len(stars),
        region=region,
        reason="masked by the source: it can support a match but not make one",
    )


def _birth_date(number: str) -> dt.date | None:
    return _birth_date_of(number[6:14])


@lru_cache(maxsize=1 << 16)
def _birth_date_of(yyyymmdd: str) -> dt.date | None:
    # Cached on the date digits: stdnum's compact() costs more than the rest of normalize_id together,
    # and a district has a few tens of thousands of distinct birth dates against a million numbers.
    try:
        born = ric.get_birth_date(f"000000{yyyymmdd}0000")
    except ValidationError:  # InvalidComponent: not a calendar date
        return None
    return born if born.year in _YEARS else None


def _shape(text: str) -> str:
    """Describe a value without quoting it: its length and which classes of characters it holds."""
    classes = [
        name for name, test in (("digits", str.isdigit), ("letters", str.isalpha)) if any(map(test, text))
    ]
    other = any(not (c.isdigit() or c.isalpha()) for c in text)
    return f"{len(text)} characters: {', '.join(classes + ['other'] * other) or 'none'}"
