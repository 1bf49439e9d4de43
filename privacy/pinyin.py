"""Persons' names as people type them in pinyin, for scrubbing free text that names them.

``Scrubber`` (`privacy.scrub`) finds names written in characters; a purpose or a note may name the
same person in pinyin: ``visit Zhang Xiaowei``. `scrub_pinyin` replaces the pinyin of the given names by
``[姓名]`` — any case, spaced, hyphenated, comma'd or run together, surname first or last, with or without
tone marks or tone digits, full-width or with zero-width marks (the text is NFKC-normalised and those
marks dropped first, `typed_text`), each character by any of its readings (曾 ``zeng`` or ``ceng``). Only
the names of the persons a text is about are looked for: the pinyin of every known name would blank
ordinary words (common syllable pairs). A surname alone (``Mr Zhang``) is not a name, nor is a name with a
character pypinyin cannot read (㐂安 would be a bare ``an``).

Example::

    scrub_pinyin("visit Xiao-Wei Zhang at home", ["张小伟"])   # 'visit [姓名] at home'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from pypinyin import Style, pinyin

from islandbridge.privacy.scrub import PLACEHOLDERS
from islandbridge.transforms.normalize.names import COMPOUND_SURNAMES, normalize_name

_HAN = re.compile(r"[\u3400-\u9fff]")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\u2060\ufeff]")
# A vowel typed with its tone mark (the third tone's caron, or the breve many fonts and keyboards give for
# it), or ü as u, v or yu (passports: 吕 LYU, 女 NYU); a syllable with its tone as a digit (zhang1);
# syllables typed apart or run together
_TONED = {
    "a": "aāáǎàă",
    "e": "eēéěèĕ",
    "i": "iīíǐìĭ",
    "o": "oōóǒòŏ",
    "u": "uūúǔùŭüǖǘǚǜv",
    "v": "vüǖǘǚǜu",
}
_BETWEEN = r"[\s\-'’·.,_]*"


def typed_text(text: str) -> str:
    """``text`` as compared: NFKC (full-width ｚｈａｎｇ is zhang, a combining caron joins its vowel) without
    zero-width marks."""
    return _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))


def scrub_pinyin(text: str, names: Iterable[str]) -> str:
    """``text`` (as `typed_text`) with each of ``names`` typed in pinyin replaced by ``[姓名]`` (see the
    module docstring)."""
    typed = pinyin_names(names)
    return typed_text(text) if typed is None else typed.sub(PLACEHOLDERS["name"], typed_text(text))


def pinyin_names(names: Iterable[str]) -> re.Pattern[str] | None:
    """The names as typed in pinyin, in any case, with or without tone marks and spaces, surname first or
    last: 张小伟 matches ``zhangxiaowei``, ``Zhang Xiaowei``, ``Xiao-Wei Zhang``, ``Zhāng Xiǎowěi``; each
    character by any of its readings (曾 ``zeng`` or ``ceng``). ``None`` when no name has two characters."""
    forms = set()
    for name in names:
        han = normalize_name(name).name_key or "".join(_HAN.findall(name))
        chars = [c for c in han if c != "·"]
        if len(chars) < 2:
            continue
        syllables = [_readings(c) for c in chars]
        if not all(syllables):  # a character without a reading: the rest alone would match other words
            continue
        cut = 0 if "·" in han else 2 if len(chars) >= 3 and han[:2] in COMPOUND_SURNAMES else 1
        forms |= {_BETWEEN.join(syllables), _BETWEEN.join(syllables[cut:] + syllables[:cut])}
    if not forms:
        return None
    return re.compile(f"(?<![a-z])(?:{'|'.join(sorted(forms))})(?![a-z])", re.IGNORECASE)


def _readings(char: str) -> str:
    """A character's readings as a pattern, ``""`` when pypinyin has no reading of it."""
    readings = {r for rs in pinyin(char, style=Style.NORMAL, heteronym=True) for r in rs if r.isascii()}
    toned = ("".join(_typed(c) for c in r) for r in sorted(readings))
    return f"(?:{'|'.join(toned)})[1-5]?" if readings else ""


def _typed(letter: str) -> str:
    """One letter of a reading as people type it; pypinyin writes ü as ``v`` (吕 ``lv``)."""
    if letter == "v":
        return f"(?:[{_TONED['v']}]|yu)"
    return f"[{_TONED[letter]}]" if letter in _TONED else re.escape(letter)
