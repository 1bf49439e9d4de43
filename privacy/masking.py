"""Display masks for the few places where a person must recognise someone without seeing everything.

The masks follow common Chinese practice (as on bank and government screens)::

    mask_name("张小伟")              -> "张*伟"
    mask_name("张伟")                -> "张*"
    mask_name("欧阳小伟")            -> "欧**伟"
    mask_phone("13800138000")       -> "138****8000"
    mask_id("510104196812225052")   -> "510104********5052"

Every function is total: ``None`` gives ``None``, and input that is not what it should be gives a fully
masked value — never the input itself, which might be an identifier in an unexpected shape.
"""

from __future__ import annotations

import re
import unicodedata

from islandbridge.privacy.scrub import FAILED, PLACEHOLDERS, scrub

_NOT_DIGIT = re.compile(r"\D")
_ID = re.compile(r"^(?:\d{17}[\dX]|\d{15})$")
_FULL_MASK = "***"


def mask_name(name: object) -> str | None:
    """Keep the first character and, for three characters or more, the last one."""
    if name is None:
        return None
    text = _text(name)
    if len(text) <= 1:
        return "*" if text else ""
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]


def mask_phone(phone: object) -> str | None:
    """Keep the first three and last four digits of a mobile or landline number (``+86`` dropped)."""
    if phone is None:
        return None
    digits = _NOT_DIGIT.sub("", _text(phone))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if not 10 <= len(digits) <= 12:
        return _FULL_MASK
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id(id_number: object) -> str | None:
    """Keep the region code (first six) and the last four characters of an 18-character ID number.

    A 15-digit (first-generation) number keeps its first six and last three. Anything else is masked
    whole.
    """
    if id_number is None:
        return None
    text = _text(id_number).upper()
    if not _ID.match(text):
        return _FULL_MASK
    if len(text) == 15:
        return text[:6] + "******" + text[-3:]
    return text[:6] + "********" + text[-4:]


def _text(value: object) -> str:
    """``value`` as text without white space; an object that cannot print itself counts as garbage."""
    try:
        return "".join(str(value).split())
    except Exception:  # noqa: BLE001 - total by contract
        return "\ufffd"


# What a user typed, in parts: a scrub placeholder whole (``[证件号]``), a number (its digits in groups, as
# a card or a phone is written, a sign or an X allowed), else a run of characters between separators
# (white space, / ~ : , ; quotes, brackets, =, < and >).
_SEPARATORS = "\\s/~:,;'\"()\\[\\]=<>"
_PART = re.compile(rf"\[[^\[\]\s]{{1,8}}\]|\+?\d(?:[\d\- ]*[\dXx])?(?![^{_SEPARATORS}])|[^{_SEPARATORS}]+")
_NUMBER = re.compile(r"\+?\d(?:[\d\- ]*[\dXx])?")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def mask_typed(text: object) -> str:
    """What a user typed (a command's argument), safe to repeat in an error or a log: each part that is an
    ID number, a phone or a name masked as `mask_id`, `mask_phone` and `mask_name` mask a record's values
    (``islandbridge explain``, ``review show``), a number of 10 digits or more otherwise masked whole, and
    any other part scrubbed (`privacy.scrub`: a number inside a word). Keys, ids and words pass as typed.

    >>> mask_typed("civil_affairs/dibao:202610:511403194310287757~秦光明")
    'civil_affairs/dibao:202610:511403********7757~秦*明'
    """
    try:
        folded = unicodedata.normalize("NFKC", str(text))
    except Exception:  # noqa: BLE001 - total by contract
        return _FULL_MASK

    def part(match: re.Match[str]) -> str:
        value = match.group()
        if value in PLACEHOLDERS.values() or value == FAILED:
            return value
        if _HAN.search(value):
            return mask_name(value) or ""
        if _NUMBER.fullmatch(value) and sum(c.isdigit() for c in value) >= 10:
            masked = mask_id(value)
            return masked if masked != _FULL_MASK else mask_phone(value) or _FULL_MASK
        return scrub(value) or ""

    return _PART.sub(part, folded)
