"""Text clean-up shared by the normalisers: width folding, blanks and the placeholders for "nothing"."""

from __future__ import annotations

import re
import unicodedata

# NFKC folds full-width digits, letters and punctuation (１２３, Ｘ, －, ＊) and U+3000 to their ASCII
# forms; the zero-width characters survive it and are dropped explicitly.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_BLANKS = re.compile(r"\s+")

# What people type into a field when there is nothing to type. Compared after fold() and casefold().
PLACEHOLDERS = frozenset(
    {
        "",
        "无",
        "無",
        "没有",
        "沒有",
        "暂无",
        "暫無",
        "不详",
        "不詳",
        "未知",
        "空",
        "-",
        "--",
        "—",
        "——",
        "/",
        "\\",
        ".",
        "0",
        "null",
        "none",
        "nil",
        "nan",
        "n/a",
        "na",
        "#n/a",
    }
)


def fold(raw: str) -> str:
    """NFKC-fold `raw`, drop invisible characters and trim the ends (inner blanks are kept)."""
    return unicodedata.normalize("NFKC", raw).translate(_INVISIBLE).strip()


def drop_blanks(text: str) -> str:
    """Remove every whitespace character, including the ones inside the text."""
    return _BLANKS.sub("", text)


def is_placeholder(folded: str) -> bool:
    """True when a folded field holds nothing but a 'no value' placeholder such as ``无`` or ``NULL``."""
    return folded.casefold() in PLACEHOLDERS
