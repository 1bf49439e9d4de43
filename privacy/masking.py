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
