"""Phone fields: one or more numbers in the many ways people type them, to E.164 with `phonenumbers`.

A field may hold two numbers (``15658881440/13118791697``). Every valid number is kept, in the order
given; a shared phone is evidence of a shared household, not of a shared identity.

``status``: ``ok`` (every part is a valid number), ``partial`` (some are), ``missing`` (NULL, ``无``,
``-``...), ``invalid`` (nothing usable). Reasons never quote the number.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType

from islandbridge.errors import count, noun
from islandbridge.transforms.normalize._text import fold, is_placeholder

STATUSES = ("ok", "partial", "missing", "invalid")
REGION = "CN"

_SEPARATORS = re.compile(r"[/、,;|\n]+|或")
_NATIONAL_MOBILE = re.compile(r"(?:\+86|0086|86)?(1[0-9]{10})")
_FORMATTING = str.maketrans("", "", " -")
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# Longer than any real number with its formatting; beyond it a part is text, not a number.
_MAX_PART = 40


class PhoneResult(NamedTuple):
    """One phone field, normalised: every valid number as E.164 and the subset that are mobiles."""

    numbers: tuple[str, ...] = ()
    mobiles: tuple[str, ...] = ()
    status: str = "missing"
    reason: str | None = None

    @property
    def canonical(self) -> str | None:
        """The numbers joined by ``/``: normalising it again gives the same numbers."""
        return "/".join(self.numbers) or None


def normalize_phones(raw: object) -> PhoneResult:
    """Parse a phone field (region CN) into E.164 numbers; total and idempotent on `canonical`.

    Handles ``13800138000``, ``138-0013-8000``, ``+86 13800138000``, ``8613800138000``,
    ``138 0013 8000``, full-width digits, landlines such as ``028-12345678``, and several numbers joined
    by ``/``, ``、``, ``,`` or ``;``.

    >>> normalize_phones("138-0013-8000/028-12345678").numbers
    ('+8613800138000', '+862812345678')
    """
    if raw is None:
        return PhoneResult(reason="no value")
    if isinstance(raw, float) and raw.is_integer() and 0 < raw < 1e15:
        raw = int(raw)  # a number cell of a spreadsheet: exact up to 15 digits, and phones are shorter
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        return PhoneResult(status="invalid", reason=f"unexpected type {type(raw).__name__}")
    text = fold(raw)
    mobile = _parse_mobile(text.translate(_FORMATTING))
    if mobile is not None:  # the dominant case, one mobile however formatted: skip the general path
        return PhoneResult((mobile,), (mobile,), "ok")
    if is_placeholder(text):
        return PhoneResult(reason="empty or a placeholder")
    parts = [part.strip() for part in _SEPARATORS.split(text)]
    parts = [part for part in parts if part and not is_placeholder(part)]
    if not parts:
        return PhoneResult(reason="empty or a placeholder")
    return _combine([_parse_part(part) for part in parts])


def _combine(parsed: list[list[tuple[str, bool]] | None]) -> PhoneResult:
    numbers: dict[str, bool] = {}
    for found in parsed:
        numbers.update(found or ())
    bad = sum(found is None for found in parsed)
    if not numbers:
        return PhoneResult(status="invalid", reason=f"no valid phone number in {count(len(parsed), 'part')}")
    mobiles = tuple(number for number, is_mobile in numbers.items() if is_mobile)
    if bad:
        return PhoneResult(
            tuple(numbers),
            mobiles,
            "partial",
            f"{bad} of {count(len(parsed), 'part')} {noun(bad, 'is not a valid phone number', 'are not valid phone numbers')}",
        )
    return PhoneResult(tuple(numbers), mobiles, "ok")


def _parse_part(part: str) -> list[tuple[str, bool]] | None:
    """The (E.164, is_mobile) numbers in one part, or None when it holds no valid number."""
    if len(part) > _MAX_PART:
        return None
    one = _parse_number(part)
    if one is not None:
        return [one]
    # "13800138000 13900139000": two numbers separated by a blank only.
    tokens = part.split()
    if len(tokens) > 1 and all(sum(c.isdigit() for c in token) >= 7 for token in tokens):
        found = [_parse_number(token) for token in tokens]
        if all(found):
            return found
    return None


def _parse_number(text: str) -> tuple[str, bool] | None:
    mobile = _parse_mobile(text.translate(_FORMATTING))
    if mobile is not None:
        return mobile, True
    try:
        number = phonenumbers.parse(text, REGION)
    except NumberParseException:
        return None
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        return None
    # For +86 (one region) a known type means valid; +1 and the like must also fit their region.
    if number.country_code != 86 and not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), kind in _MOBILE_TYPES


def _parse_mobile(digits: str) -> str | None:
    """E.164 of a CN mobile written as 11 digits with an optional +86/0086/86, else None.

    The dominant shape. Building the number directly gives what `phonenumbers.parse` would (a property
    test checks that) at a fifth of its cost; whether it is a mobile still comes from phonenumbers.
    """
    match = _NATIONAL_MOBILE.fullmatch(digits)
    if match is None:
        return None
    number = PhoneNumber(country_code=86, national_number=int(match[1]))
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)
