"""The needles (the values to look for) and the matcher that finds them in text.

`Needles` holds every ID number, phone, bank card and name as the forms it can take (digits without
separators, the 15-digit legacy ID, the float a spreadsheet makes of a number, a passport token, a name
without blanks or middle dots); ``find`` returns the outermost occurrences in a text as `_Match` spans,
``redact`` masks them. The package docstring (`islandbridge.devtools.leakscan`) says what is matched.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from islandbridge.privacy.masking import mask_id, mask_name, mask_phone
from islandbridge.transforms.normalize.ids import normalize_id

KINDS = ("id_number", "phone", "bank_card", "name")

# Full-width ASCII and U+3000 folded one character for one: offsets in the folded text are offsets in the
# original.
_FOLD = {0x3000: " ", **{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}}
_DIGIT_SEPARATORS = " \t-"
_DROP_DIGIT_SEPARATORS = str.maketrans("", "", _DIGIT_SEPARATORS)
_NAME_SEPARATORS = " \t\u00b7\u30fb\u2022\u2027"
_DROP_NAME_SEPARATORS = str.maketrans("", "", _NAME_SEPARATORS)
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"

# Patterns start with a character class, not a look-behind, so that the regex engine can skip ahead fast;
# leftmost-longest matching still starts a run at its first digit.
_DIGIT_RUN = re.compile(r"[0-9](?:[ \t-]?[0-9]){10,}(?:[ \t-]?[Xx])?")  # 11 digits or more: a mobile
_FLOATISH = re.compile(r"[0-9](?:\.[0-9]{1,17}[eE]\+?1[0-9]|[0-9]{9,18}\.[0-9]*)(?![0-9])")
_HAN_RUN = re.compile(f"[{_HAN}](?:[{_NAME_SEPARATORS}]{{0,2}}[{_HAN}])+")
_NAME_KEY = re.compile(f"[{_HAN}]{{2,}}")
_PHONE_PARTS = re.compile(r"[/、,;|，；\n]|或")
_NOT_DIGIT = re.compile(r"[^0-9]")


@dataclass(frozen=True)
class Needle:
    """One value to look for. Only its mask is kept here; the raw value is a key of ``Needles``."""

    index: int
    kind: str  # id_number, phone, bank_card, name
    variant: str  # id18, legacy15, id_as_float, invalid_checksum, passport, mobile, card, name
    masked: str


@dataclass(frozen=True, slots=True)
class _Match:
    start: int
    end: int
    needle: Needle
    embedded: bool  # the needle is part of a longer run of digits or Han characters


class Needles:
    """The values to look for, and the matcher over text.

    Build it with ``needles_from_street`` or ``Needles.from_values``; ``find(text)`` returns the
    outermost occurrences, ``redact(text)`` masks them.

    >>> Needles.from_values(phones=["+86 138-0013-8000"]).redact("call 138 0013 8000")
    'call 138****8000'
    """

    def __init__(self) -> None:
        self._needles: list[Needle] = []
        self._digits: dict[str, Needle] = {}
        self._digit_lengths: set[int] = set()
        self._tokens: dict[str, Needle] = {}
        self._floats: dict[float, Needle] = {}
        self._names: dict[str, Needle] = {}
        self._name_lengths: dict[str, set[int]] = defaultdict(set)
        self.skipped: Counter[str] = Counter()  # source values that gave no needle, by "kind:reason"

    @classmethod
    def from_values(
        cls,
        *,
        ids: Iterable[object] = (),
        phones: Iterable[object] = (),
        bank_cards: Iterable[object] = (),
        names: Iterable[object] = (),
    ) -> Needles:
        """Needles from values as a source holds them (any format the ``add_*`` methods accept)."""
        needles = cls()
        for add, values in (
            (needles.add_id, ids),
            (needles.add_phone, phones),
            (needles.add_bank_card, bank_cards),
            (needles.add_name, names),
        ):
            for value in values:
                add(value)
        return needles

    def __len__(self) -> int:
        return len(self._needles)

    def counts(self) -> dict[str, int]:
        """Distinct needles per ``kind/variant``."""
        return dict(sorted(Counter(f"{n.kind}/{n.variant}" for n in self._needles).items()))

    def add_id(self, raw: object) -> None:
        """An ID-card field as a source holds it: full, legacy, typo'd, passport or spreadsheet-damaged."""
        if isinstance(raw, str) and "*" in raw:
            self.skipped["id_number:masked"] += 1
            return
        result = normalize_id(raw)
        if result.kind in ("full", "legacy15_upgraded"):
            self._add_full_id(result.value)
        elif result.kind == "invalid_checksum":
            text = _clean_number(str(raw))
            self._add_digits(text, "id_number", "invalid_checksum", mask_id(text))
        elif result.kind == "passport":
            self._add(self._tokens, result.passport, "id_number", "passport", _mask_token(result.passport))
        elif result.kind == "excel_damaged" and (number := _significant_float(raw)) is not None:
            self._add(self._floats, number, "id_number", "id_as_float", f"{int(number)}"[:6] + "*" * 12)
        else:
            self.skipped[f"id_number:{result.kind}"] += 1

    def add_phone(self, raw: object) -> None:
        """A phone field: every mobile in it (``a/b`` pairs, ``+86``, separators, full-width)."""
        mobiles = _mobiles(raw)
        if not mobiles:
            self.skipped["phone:no_mobile"] += 1
        for number in mobiles:
            needle = self._add_digits(number, "phone", "mobile", mask_phone(number))
            self._floats.setdefault(float(number), needle)

    def add_bank_card(self, raw: object) -> None:
        """A bank card number of 16-19 digits (separators allowed)."""
        digits = _NOT_DIGIT.sub("", str(raw).translate(_FOLD)) if raw is not None else ""
        if not 16 <= len(digits) <= 19:
            self.skipped["bank_card:not_16_19_digits"] += 1
            return
        needle = self._add_digits(
            digits, "bank_card", "card", digits[:4] + "*" * (len(digits) - 8) + digits[-4:]
        )
        self._floats.setdefault(float(digits), needle)

    def add_name(self, raw: object) -> None:
        """A person's name: Han characters, blanks and middle dots ignored; shorter than two is ignored."""
        key = _name_key(raw)
        if key is None:
            self.skipped["name:not_han"] += 1
            return
        self._add(self._names, key, "name", "name", mask_name(key))
        self._name_lengths[key[0]].add(len(key))

    def _add_full_id(self, id18: str) -> None:
        self._add_digits(id18, "id_number", "id18", mask_id(id18))
        legacy = id18[:6] + id18[8:17]
        self._add_digits(legacy, "id_number", "legacy15", mask_id(legacy))
        if id18[-1] != "X":  # a number ending in X cannot become a float
            # What a spreadsheet or a DOUBLE column makes of it: 17, 16 or 15 significant digits.
            keys = {float(int(id18)), float(f"{int(id18):.16g}"), float(f"{int(id18):.15g}")}
            needle = self._add(self._floats, keys.pop(), "id_number", "id_as_float", mask_id(id18))
            for key in keys:
                self._floats.setdefault(key, needle)

    def _token_pattern(self) -> re.Pattern:
        """Passport-like tokens that start with a letter some passport starts with (fewer tries)."""
        letters = re.escape("".join(sorted({t[0] for t in self._tokens})))
        return re.compile(f"[{letters}][A-Za-z]?[0-9]{{6,9}}(?![0-9])", re.IGNORECASE)  # re caches it

    def sql_prefilter(self) -> str:
        """An RE2 pattern that every text holding a needle (or an escape) matches, for DuckDB's regexp.

        It only narrows what is handed to ``find``; it decides nothing itself.
        """
        digit, sep = "[0-9\\x{FF10}-\\x{FF19}]", "[ \\t\\-\\x{3000}]"
        han, name_sep = "\\p{Han}", "[ \\t\\x{3000}\\x{00B7}\\x{30FB}\\x{2022}\\x{2027}]"
        parts = [
            f"{digit}(?:{sep}?{digit}){{9}}",
            f"{digit}[.][0-9]+[eE]",
            f"{han}{name_sep}{{0,2}}{han}",
            "\\\\[ux]|&#|%[0-9a-fA-F]{2}",
            "[\\x{FF21}-\\x{FF5A}]",
        ]
        if self._tokens:
            letters = "".join(sorted({t[0] for t in self._tokens}))
            parts.append(f"(?i:[{letters}][a-z]?[0-9]{{6}})")
        return "|".join(parts)

    def _add_digits(self, digits: str, kind: str, variant: str, masked: str | None) -> Needle:
        self._digit_lengths.add(len(digits))
        return self._add(self._digits, digits, kind, variant, masked)

    def _add(self, table: dict, key, kind: str, variant: str, masked: str | None) -> Needle:
        if key in table:
            return table[key]
        needle = Needle(len(self._needles), kind, variant, masked or "***")
        self._needles.append(needle)
        table[key] = needle
        return needle

    def find(self, text: str) -> list[_Match]:
        """Every needle in ``text``; an occurrence inside a longer one (a phone inside an ID) is dropped."""
        folded = text.translate(_FOLD)
        found: list[_Match] = []
        if self._digits:
            found += self._find_digits(folded)
        if self._floats:
            found += self._find_floats(folded)
        if self._tokens:
            found += self._find_tokens(folded)
        if self._names:
            found += self._find_names(folded)
        return _outermost(found)

    def redact(self, text: str) -> str:
        """``text`` with every needle replaced by its mask (for error messages and the like)."""
        out, cursor = [], 0
        for m in self.find(text):
            out += [text[cursor : m.start], m.needle.masked]
            cursor = m.end
        return "".join(out) + text[cursor:]

    def _find_digits(self, folded: str) -> Iterator[_Match]:
        get, lengths = self._digits.get, sorted(self._digit_lengths)
        for run in _DIGIT_RUN.finditer(folded):
            digits = run.group().translate(_DROP_DIGIT_SEPARATORS).upper()
            n, spans = len(digits), []
            for length in lengths:
                if length > n:
                    break
                spans += [
                    (i, i + length, needle)
                    for i in range(n - length + 1)
                    if (needle := get(digits[i : i + length])) is not None
                ]
            if 15 <= n <= 19 and digits.isdigit():
                # An ID that went through a float and came back as an integer: 511403198203116400.
                needle = self._floats.get(float(digits))
                if needle is not None:
                    spans.append((0, n, needle))
            if spans:
                yield from _place(run, digits, spans)

    def _find_floats(self, folded: str) -> Iterator[_Match]:
        for m in _FLOATISH.finditer(folded):
            needle = self._floats.get(float(m.group()))
            if needle is not None:
                yield _Match(m.start(), m.end(), needle, False)

    def _find_tokens(self, folded: str) -> Iterator[_Match]:
        for m in self._token_pattern().finditer(folded):
            needle = self._tokens.get(m.group().upper())
            if needle is not None and not (m.start() and folded[m.start() - 1].isalnum()):
                yield _Match(m.start(), m.end(), needle, False)

    def _find_names(self, folded: str) -> Iterator[_Match]:
        names, lengths = self._names, self._name_lengths
        for run in _HAN_RUN.finditer(folded):
            text = run.group()
            key = text.translate(_DROP_NAME_SEPARATORS)
            positions = None
            for i, char in enumerate(key):
                for length in lengths.get(char, ()):
                    needle = names.get(key[i : i + length]) if i + length <= len(key) else None
                    if needle is None:
                        continue
                    if positions is None:
                        positions = [j for j, c in enumerate(text) if c not in _NAME_SEPARATORS]
                    yield _Match(
                        run.start() + positions[i],
                        run.start() + positions[i + length - 1] + 1,
                        needle,
                        embedded=length < len(key),
                    )


def _place(run: re.Match, digits: str, spans: list[tuple[int, int, Needle]]) -> Iterator[_Match]:
    """Map spans over a run's digits (separators removed) back to offsets in the text."""
    positions = [j for j, c in enumerate(run.group()) if c not in _DIGIT_SEPARATORS]
    for i, j, needle in spans:
        national = needle.kind == "phone" and j == len(digits) and digits[:i] in ("86", "0086")
        embedded = j - i < len(digits) and not national
        yield _Match(run.start() + positions[i], run.start() + positions[j - 1] + 1, needle, embedded)


def _outermost(matches: list[_Match]) -> list[_Match]:
    kept: list[_Match] = []
    reach = -1
    for m in sorted(matches, key=lambda m: (m.start, m.start - m.end)):
        if m.end > reach:
            kept.append(m)
            reach = m.end
    return kept


def _clean_number(text: str) -> str:
    return re.sub(r"\s", "", text.translate(_FOLD)).lstrip("'`‘’").upper()


def _significant_float(raw: object) -> float | None:
    """The float of a spreadsheet-damaged ID if it still carries 15 or more significant digits."""
    try:
        number = raw if isinstance(raw, float) else float(_clean_number(str(raw)))
    except ValueError:
        return None
    mantissa = repr(number).split("e")[0].replace(".", "").rstrip("0")
    return number if len(mantissa) >= 15 else None


def _mobiles(raw: object) -> list[str]:
    if raw is None:
        return []
    numbers = []
    for part in _PHONE_PARTS.split(str(raw).translate(_FOLD)):
        digits = _NOT_DIGIT.sub("", part)
        for prefix in ("0086", "86"):
            if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
                digits = digits[len(prefix) :]
        if len(digits) == 11 and digits[0] == "1":
            numbers.append(digits)
    return numbers


def _name_key(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    key = re.sub(r"\s", "", raw.translate(_FOLD)).translate(_DROP_NAME_SEPARATORS)
    return key if _NAME_KEY.fullmatch(key) else None


def _mask_token(token: str) -> str:
    return token[0] + "*" * (len(token) - 1)
