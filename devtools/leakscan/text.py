"""Text helpers of the scan: escaped text decoded (JSON, Python, HTML, URL), a file decoded in whole lines,
the CSV column of an offset, and a hit's context with every needle masked and other digits blurred.
"""

from __future__ import annotations

import bisect
import codecs
import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from islandbridge.devtools.leakscan.needles import _Match

_CHUNK = 8 << 20
_CONTEXT = 14

_ESCAPES = re.compile(
    r"\\u[0-9a-fA-F]{4}|\\x[89a-fA-F][0-9a-fA-F]|&#[xX]?[0-9a-fA-F]+;|%[89a-fA-F][0-9a-fA-F]"
)


def _from_json_escapes(s: str) -> str:
    return (
        s.encode("ascii")
        .decode("unicode_escape")
        .encode("utf-16", "surrogatepass")
        .decode("utf-16", "replace")
    )


def _from_hex(s: str) -> str:
    return bytes.fromhex(s.replace("\\x", "").replace("%", "")).decode("utf-8", "replace")


_DECODERS = (
    ("json-escape", re.compile(r"(?:\\u[0-9a-fA-F]{4})+"), _from_json_escapes),
    ("hex-escape", re.compile(r"(?:\\x[0-9a-fA-F]{2})+"), _from_hex),
    ("html-entity", re.compile(r"(?:&#[xX]?[0-9a-fA-F]+;)+"), html.unescape),
    ("url-escape", re.compile(r"(?:%[0-9a-fA-F]{2})+"), _from_hex),
)


def _escaped_variants(text: str, via: str) -> Iterator[tuple[str, str]]:
    """``text`` with one kind of escape decoded, for each kind it holds (no newline is introduced)."""
    if not _ESCAPES.search(text):
        return
    for name, pattern, decode in _DECODERS:
        if pattern.search(text):
            yield (
                _join_via(via, name),
                pattern.sub(lambda m, decode=decode: _decoded(m.group(), decode), text),
            )


def _decoded(escaped: str, decode: Callable[[str], str]) -> str:
    try:
        return re.sub(r"[\r\n]", " ", decode(escaped))
    except (UnicodeError, ValueError):
        return escaped


def _decoded_chunks(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """(number of the first line, whole lines) over a file decoded strictly."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    carry, line = "", 1
    with path.open("rb") as f:
        while True:
            data = f.read(_CHUNK)
            text = carry + decoder.decode(data, final=not data)
            cut = text.rfind("\n") + 1 if data else len(text)
            chunk, carry = text[:cut], text[cut:]
            if chunk:
                yield line, chunk
                line += chunk.count("\n")
            if not data:
                return


def _masked_context(text: str, matches: list[_Match], starts: list[int], target: _Match) -> str:
    """A few characters either side of ``target``: needles masked, other digits ``#``, controls ``.``."""
    lo, hi = max(0, target.start - 2 * _CONTEXT), target.end + 2 * _CONTEXT
    near = [
        m
        for m in matches[bisect.bisect_left(starts, lo - 64) : bisect.bisect_right(starts, hi)]
        if m.end > lo and m.start < hi
    ]
    lo = min([lo, *(m.start for m in near)])  # whole needles only, so that a cut never shows part of one
    hi = min(len(text), max([hi, *(m.end for m in near)]))
    pieces, cursor, at, last = [], lo, 0, 0
    for m in near:
        is_target = m.start == target.start and m.end == target.end
        if m.start < cursor:  # overlaps the needle before it: the union stays masked
            at = last if is_target else at
            cursor = max(cursor, m.end)
            continue
        pieces.append(_blur(text[cursor : m.start]))
        last = sum(map(len, pieces))
        at = last if is_target else at
        pieces.append(f"«{m.needle.masked}»" if is_target else m.needle.masked)
        cursor = m.end
    pieces.append(_blur(text[cursor:hi]))
    masked = "".join(pieces)
    return masked[max(0, at - _CONTEXT) : at + len(target.needle.masked) + 2 + _CONTEXT].strip()


_BLUR = re.compile(r"\d|[\x00-\x1f\x7f\ufffd]")


def _blur(text: str) -> str:
    return _BLUR.sub(lambda m: "#" if m.group().isdigit() else ".", text)


def _shift(m: _Match, by: int) -> _Match:
    return _Match(m.start + by, m.end + by, m.needle, m.embedded)


def _join_via(via: str, step: str) -> str:
    return "+".join(p for p in (via, step) if p)


def _csv_column(header: list[str], text: str, offset: int) -> str:
    """The header of the CSV field that ``offset`` falls in (quotes respected)."""
    index, quoted = 0, False
    for char in text[text.rfind("\n", 0, offset) + 1 : offset]:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            index += 1
    name = header[index].strip() if index < len(header) else ""
    return name or f"column {index + 1}"
