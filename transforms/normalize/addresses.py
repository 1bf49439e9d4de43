"""Addresses: free text and registry/IoT columns down to (estate, building, unit, room).

The grid platform and the rosters write one flat in many ways; all of these parse to building ``3``,
unit ``2``, room ``501``::

    锦江苑3栋2单元501室    锦江苑3-2-501    锦江苑小区3幢2单元501号    眉山市彭山区锦江苑3栋2单元501
    3栋2单元501 (no estate: partial)    锦江苑３栋２单元０５０１ (full-width, zero-padded room)

The registry (``t_fw``: ld ``3``/``3栋``, dy ``2``, fh ``501``/``0501``) and the IoT platform give the
parts in columns; `normalize_house` brings those to the same form, and `house_key` makes the string
that joins a parsed address to the registry's house.

Estates are compared on ``estate_key``: the name without its ``小区`` suffix (``滨江小区`` and
``滨江小区小区`` are both ``滨江``). With `known_estates` the name is resolved to the registry's ``xqbm``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from islandbridge.transforms.normalize._text import drop_blanks, fold, is_placeholder

STATUSES = ("ok", "partial", "missing", "invalid")

_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−"})
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】")
_CN_NUMBER = "一二三四五六七八九十"
_BUILDING_MARK = "号楼|栋|幢|座|#|号"
_BUILDING = rf"[0-9]+[A-Z]?|[A-Z][0-9]*|[{_CN_NUMBER}]+"
_UNIT = rf"[0-9]+|[{_CN_NUMBER}]+"
_MARKED = re.compile(
    rf"(?P<head>.*?)(?<![0-9A-Z])(?P<b>{_BUILDING})(?:{_BUILDING_MARK})"
    rf"(?:(?P<u>{_UNIT})单元)?(?:(?P<r>[0-9]+[A-Z]?)(?:室|号|房|户)?)?"
)
_DASHED = re.compile(
    r"(?P<head>.*?)(?<![0-9A-Z])(?P<b>[0-9]+[A-Z]?|[A-Z])-(?P<u>[0-9]+)-(?P<r>[0-9]+[A-Z]?)(?:室|号|房|户)?"
)
# Administrative levels in front of an estate name, outermost first. Two characters at least before
# the level word, so that an estate such as 城市花园 keeps its 市; 小区 is an estate, not a district.
_ADMIN = re.compile(
    r"(?:[^0-9]{2,12}?(?:省|自治区|特别行政区|自治州|地区|盟|市|(?<!小)区|县|旗|街道|镇|乡|社区))"
    r"|(?:[^0-9]{1,12}?(?:路|街|大道|巷)[0-9]+号)"
)
# Where an administrative name can end inside an estate text (锦江苑 in 眉山市彭山区锦江苑).
_BOUNDARIES = "省市区县旗道镇乡号"
_PART_MARKS = {
    "building": re.compile(rf"(?:{_BUILDING_MARK})$"),
    "unit": re.compile(r"单元$"),
    "room": re.compile(r"(?:室|号|房|户)$"),
}
_PART = re.compile(r"([0-9]+)([A-Z]?)|([A-Z][0-9]*)")
_MAX_LENGTH = 120
_PUNCTUATION = "-,.;:#/"
_HAN = re.compile(r"[\u3400-\u9fff]")


class HouseParts(NamedTuple):
    """Building, unit and room in canonical form (``3``, ``2``, ``501``); None where unknown."""

    building: str | None
    unit: str | None
    room: str | None


class AddressResult(NamedTuple):
    """One address, parsed. ``estate_code`` is set only when `known_estates` resolved the estate."""

    estate_name: str | None = None
    estate_key: str | None = None
    estate_code: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    status: str = "missing"
    reason: str | None = None

    @property
    def canonical(self) -> str | None:
        """The address in one fixed style (``锦江苑3栋2单元501室``); parsing it again gives the same parts."""
        if self.building is None:
            return self.estate_name
        unit = f"{self.unit}单元" if self.unit else ""
        room = f"{self.room}室" if self.room else ""
        # An estate name ending in a digit (阳光100) needs a separator, or its digits join the building's.
        estate = self.estate_name or ""
        separator = "-" if re.search(r"[0-9A-Z]$", estate) else ""
        return f"{estate}{separator}{self.building}栋{unit}{room}"

    @property
    def house_key(self) -> str | None:
        """`house_key` of the resolved estate and the parts; None unless all four are known."""
        return house_key(self.estate_code, self.building, self.unit, self.room)


class EstateIndex:
    """Known estates (name → registry code), looked up by `estate_key`.

    Build it once for many addresses (`normalize_table` does); a key that two codes claim is dropped,
    because guessing between two estates would send a visit to the wrong door.
    """

    def __init__(self, known: Mapping[str, str]):
        claims: dict[str, set[str]] = {}
        names: dict[str, str] = {}
        for name, code in known.items():
            key = estate_key(name)
            if key and code:
                claims.setdefault(key, set()).add(code)
                # Report the registry's own spelling: the shortest name given for the key.
                if key not in names or len(name) < len(names[key]):
                    names[key] = name
        self._codes = {key: next(iter(codes)) for key, codes in claims.items() if len(codes) == 1}
        self._names = names
        self.ambiguous = frozenset(key for key, codes in claims.items() if len(codes) > 1)
        self._identity = frozenset(self._codes.items()), frozenset(self._names.items())

    # Equal by content, so that indexes built from the same mapping share the parse cache.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, EstateIndex) and self._identity == other._identity

    def __hash__(self) -> int:
        return hash(self._identity)

    def resolve(self, head: str, stripped: str) -> tuple[str, str, str] | None:
        """(code, name, key) of the estate `head` ends with, or None; `stripped` is head minus its prefix."""
        key = estate_key(stripped)
        if key in self._codes:
            return self._codes[key], self._names[key], key
        full = estate_key(head)
        starts = [0] + [i + 1 for i, char in enumerate(full) if char in _BOUNDARIES]
        for start in starts:  # longest candidate first
            if full[start:] in self._codes:
                return self._codes[full[start:]], self._names[full[start:]], full[start:]
        return None


def estate_key(name: str | None) -> str | None:
    """The comparison key of an estate name: folded, without blanks and without trailing ``小区``."""
    if not name:
        return None
    key = drop_blanks(fold(name))
    while key.endswith("小区") and len(key) > 2:
        key = key[:-2]
    return key or None


def parse_address(raw: object, known_estates: Mapping[str, str] | EstateIndex | None = None) -> AddressResult:
    """Parse a free-text address into estate, building, unit and room; total and idempotent on `canonical`.

    `known_estates` maps estate names (with or without ``小区``) to registry codes (``xqbm``), or is an
    `EstateIndex` built from such a mapping. ``status`` is ``ok`` when estate, building, unit and room
    are all known (and the estate resolved, when estates were given), ``partial`` when some are,
    ``missing`` for an empty field, ``invalid`` when nothing could be read.

    >>> parse_address("眉山市彭山区锦江苑小区3幢2单元0501号", {"锦江苑": "XQ001"}).house_key
    'XQ001|3|2|501'
    """
    if raw is None:
        return AddressResult(reason="no value")
    if not isinstance(raw, str):
        return AddressResult(status="invalid", reason=f"unexpected type {type(raw).__name__}")
    text = _BRACKETS.sub("", drop_blanks(fold(raw)).translate(_DASHES).upper()).strip(_PUNCTUATION)
    if is_placeholder(text):
        return AddressResult(reason="empty or a placeholder")
    if len(text) > _MAX_LENGTH:
        return AddressResult(status="invalid", reason=f"longer than {_MAX_LENGTH} characters")
    index = EstateIndex(known_estates) if isinstance(known_estates, Mapping) else known_estates
    match = _DASHED.fullmatch(text) or _MARKED.fullmatch(text)
    if match is None:
        result = _with_estate(text, HouseParts(None, None, None), index)
        if result.estate_name is None or any(char.isdigit() for char in text):
            return AddressResult(status="invalid", reason="no estate, building, unit or room recognised")
        return result
    parts = HouseParts(_part(match["b"], "building"), _part(match["u"], "unit"), _part(match["r"], "room"))
    if parts.building is None or (match["u"] and parts.unit is None):  # e.g. 十十栋: not a number
        return AddressResult(status="invalid", reason="building or unit number not readable")
    return _with_estate(match["head"].strip(_PUNCTUATION), parts, index)


def _with_estate(head: str, parts: HouseParts, index: EstateIndex | None) -> AddressResult:
    name, key, code, problem = _estate(head, index)
    problems = [problem] if problem else []
    problems += [
        f"no {label}" for label, value in zip(HouseParts._fields, parts, strict=True) if value is None
    ]
    status = "partial" if problems else "ok"
    return AddressResult(name, key, code, *parts, status=status, reason="; ".join(problems) or None)


@lru_cache(maxsize=1 << 14)  # a district has few estates, written a few ways: heads repeat all the time
def _estate(head: str, index: EstateIndex | None) -> tuple[str | None, str | None, str | None, str | None]:
    """(name, key, code, problem) of the estate text in front of the house part."""
    stripped = _strip_admin(head).strip(_PUNCTUATION)
    if not _HAN.search(stripped):  # an estate has a Chinese name; "A" or "-" is not one
        return None, None, None, "no estate name"
    name = stripped.replace("小区小区", "小区")
    if index is None:
        return name, estate_key(stripped), None, None
    found = index.resolve(head, stripped)
    if found is None:
        return name, estate_key(stripped), None, "estate not among the known estates"
    code, name, key = found
    return name, key, code, None


def _strip_admin(head: str) -> str:
    while (match := _ADMIN.match(head)) and match.end() < len(head):
        head = head[match.end() :]
    return head


def normalize_house(ld: object, dy: object, fh: object) -> HouseParts:
    """Canonical building, unit and room from registry or IoT columns (``3栋``/``03`` → ``3``, ``0501`` → ``501``).

    A part that is None, blank or unreadable comes back as None.

    >>> normalize_house("3栋", "2", "0501")
    HouseParts(building='3', unit='2', room='501')
    """
    return HouseParts(_part(ld, "building"), _part(dy, "unit"), _part(fh, "room"))


def house_key(estate_code: object, building: object, unit: object, room: object) -> str | None:
    """The string that identifies one flat across systems: ``XQ001|3|2|501``; None if a part is unknown.

    Parts are normalised as in `normalize_house`, so the registry's ``("XQ001", "3栋", "2", "0501")`` and
    a parsed ``锦江苑3-2-501`` give the same key.
    """
    parts = normalize_house(building, unit, room)
    code = drop_blanks(fold(estate_code)).upper() if isinstance(estate_code, str) else None
    if not code or None in parts:
        return None
    return "|".join((code, *parts))


def _part(value: object, which: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _part_text(value, which) if isinstance(value, str) else None


@lru_cache(maxsize=1 << 14)  # building, unit and room numbers repeat across a whole district
def _part_text(value: str, which: str) -> str | None:
    text = _PART_MARKS[which].sub("", drop_blanks(fold(value)).upper())
    if text and all(char in _CN_NUMBER for char in text):
        number = _chinese_number(text)
        return str(number) if number else None
    match = _PART.fullmatch(text)
    if match is None:
        return None
    return match[3] or f"{match[1].lstrip('0') or '0'}{match[2]}"


def _chinese_number(text: str) -> int | None:
    """一..九十九 as written on buildings and units (二单元, 十二栋); None beyond that."""
    digits = {char: i for i, char in enumerate(_CN_NUMBER[:9], start=1)}
    tens, _, ones = text.partition("十")
    if "十" not in text:
        return digits[text] if len(text) == 1 else None
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        return None
    return (digits[tens] if tens else 1) * 10 + (digits[ones] if ones else 0)
