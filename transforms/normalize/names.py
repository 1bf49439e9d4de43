"""Personal names: clean, simplify and key them so that typed variants of one name compare equal.

``name_key`` is the cleaned simplified name (``陈  佳`` → ``陈佳``, ``韓彬`` → ``韩彬``,
``阿卜杜拉•买买提`` → ``阿卜杜拉·买买提``). ``pinyin_key`` is its tone-less pinyin run together
(``zhangwei``), so the pinyin-input typos of the grid platform (章伟 for 张伟, 炜 for 伟) compare equal:
evidence for a match, never proof of one — 张伟 is one of the commonest names in China.

Limits: homophones that differ in pinyin initials or finals (e.g. 陈/程) stay apart; every character is
read with pypinyin's default reading, so 曾 is ``ceng`` even as a surname (consistent on both sides,
which is all a comparison key needs); Latin-script names are ``invalid``, not normalised.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import NamedTuple

import opencc
from pypinyin import Style, lazy_pinyin

from islandbridge.transforms.normalize._text import drop_blanks, fold, is_placeholder

STATUSES = ("ok", "missing", "invalid")

# Common two-character surnames (复姓): a name of three or more characters starting with one of these
# has a two-character surname. 欧阳娜娜 → 欧阳 + 娜娜; a two-character 欧阳 stays 欧 + 阳.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 司空 夏侯 轩辕 令狐 钟离 闻人 澹台 "
    "单于 呼延 端木 西门 南宫 独孤 百里 东郭 万俟 申屠 公羊 太史 拓跋 赫连 完颜 第五 梁丘 左丘 "
    "闾丘 濮阳 淳于 巫马 公冶 谷梁 仲孙 叔孙".split()
)

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f〇"
# The separator of transliterated (minority) names, as typed: middle dots of several code points,
# a full stop (．folds to .) or a hyphen between two Han characters all mean "·".
_SEPARATOR_CHARS = ".·•・‧∙⋅-‐‑–—"
_DOTS = re.compile(rf"(?<=[{_HAN}])\s*[{re.escape(_SEPARATOR_CHARS)}]+\s*(?=[{_HAN}])")
_HAN_NAME = re.compile(rf"[{_HAN}]+(?:·[{_HAN}]+)*")
_MAX_LENGTH = 30

_T2S = opencc.OpenCC("t2s")


class NameResult(NamedTuple):
    """One name field, normalised. Keys are None unless ``status`` is ``ok``."""

    name_key: str | None = None
    pinyin_key: str | None = None
    surname_pinyin: str | None = None
    given_pinyin: str | None = None
    status: str = "missing"
    reason: str | None = None


def normalize_name(raw: object) -> NameResult:
    """Normalise a personal name; total and idempotent (``normalize_name(r.name_key)`` gives `r`).

    Trims, removes padding inside the name (also U+3000), unifies the separator of transliterated
    names to ``·``, converts traditional to simplified characters (OpenCC ``t2s``) and derives the
    pinyin keys. Names of transliterated minorities (with ``·``) get no surname/given split.

    >>> normalize_name("張  偉").pinyin_key
    'zhangwei'
    """
    if raw is None:
        return NameResult(reason="no value")
    if not isinstance(raw, str):
        return NameResult(status="invalid", reason=f"unexpected type {type(raw).__name__}")
    return _normalize_text(raw)


@lru_cache(maxsize=1 << 16)
def _normalize_text(raw: str) -> NameResult:
    text = fold(raw)
    if is_placeholder(text):
        return NameResult(reason="empty or a placeholder")
    text = drop_blanks(_DOTS.sub("·", text)).strip(_SEPARATOR_CHARS)
    text = _to_simplified(text)
    if not _HAN_NAME.fullmatch(text):
        return NameResult(status="invalid", reason=f"not a name in Han characters ({_shape(text)})")
    if len(text) < 2:
        return NameResult(status="invalid", reason="a single character is not a full name")
    if len(text) > _MAX_LENGTH:
        return NameResult(status="invalid", reason=f"longer than {_MAX_LENGTH} characters")
    syllables = [_char_pinyin(char) for char in text if char != "·"]
    if "·" in text:
        return NameResult(text, "".join(syllables), status="ok")
    cut = 2 if len(text) >= 3 and text[:2] in COMPOUND_SURNAMES else 1
    return NameResult(text, "".join(syllables), "".join(syllables[:cut]), "".join(syllables[cut:]), "ok")


def _to_simplified(text: str) -> str:
    # OpenCC converts phrase by phrase; running it to a fixed point keeps normalisation idempotent.
    for _ in range(3):
        converted = _T2S.convert(text)
        if converted == text:
            break
        text = converted
    return text


@cache  # bounded by the number of Han characters
def _char_pinyin(char: str) -> str:
    # One character at a time: pypinyin's phrase readings would make the key of a character depend on
    # its neighbours (长孙 zhang-sun vs 长 chang), and per-character lookups can be cached.
    return lazy_pinyin(char, style=Style.NORMAL)[0]


def _shape(text: str) -> str:
    found = [
        label
        for label, pattern in (("digits", r"[0-9]"), ("Latin letters", r"[A-Za-z]"))
        if re.search(pattern, text)
    ]
    return ", ".join(found) or "other characters"
