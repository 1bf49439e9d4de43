"""Leak scanner: find a simulated street's personal data in every file a run leaves behind.

The privacy promise (docs/privacy.md) is that names, ID numbers, phones and bank cards live only in the
vault and in the columns a department's policy allows. This module checks it the blunt way: take every
such value the simulated sources hold (the *needles*) and look for each of them in every file under a
folder, opening each file the way its format needs (DuckDB and Parquet compress strings, so a byte grep
misses them).

    needles = needles_from_street(Path("var/demo/street"))
    result = scan_tree(Path("var/demo"), needles, exclude=[Path("var/demo/street")])
    print(result.summary())            # counts only: no personal data
    print(result.report(limit=20))     # hits with masked needle and masked context
    assert result.ok                   # no hit outside what `allow` accepts, and every file was read

**Needles** (``needles_from_street``) come from ``truth/persons.csv`` and from the sources as written
(registry SQLite, grid JSON, civil xlsx/csv, IoT card holders), so the typo'd, traditional and padded
names and the damaged IDs the sources really contain are looked for too:

- ID numbers: the 18-character number and its 15-digit legacy form; a source value whose check digit
  fails, as written; a passport number (``E12345678``) as a token; the float an ID becomes in a
  spreadsheet or a DOUBLE column (``5.114031982031164e+17``, ``511403198203116400``) when it keeps 15
  or more significant digits (``5.11403E+17`` identifies nobody and is no needle).
- phones: 11-digit mobiles (``+86``/``86``/``0086`` dropped; also as a float); landlines are not
  collected (the simulated sources hold none).
- bank cards: 16-19 digits.
- names: two or more Han characters once blanks (U+3000 too) and the middle dot of Uyghur names are
  removed.
- masked values (``138****8000``, ``张*伟``, ``510104********0696``) are no needles and never match, so
  a mask in a report or a department file is not a leak.

**Matching.** Digits are matched ignoring separators (space, tab, hyphen: ``138 0013 8000``,
``+86 138-0013-8000``) and width, as substrings of a run of digits, so ``8613800138000`` holds a phone.
Names are matched exactly as substrings of a run of Han characters (blanks and middle dots inside are
ignored). A two-character name can occur inside innocent text (an estate, a category): such a hit has
``embedded=True`` and a masked context and is never dropped; pass ``allow`` (``allow_rules(terms=
["江口新居"])``) to accept it. Text escaped as JSON ``\\uXXXX``, Python ``\\xHH``, HTML ``&#NNNN;``
or URL ``%HH`` is also scanned decoded.

**Files**, recognised by content: DuckDB (opened read-only; every table's text, BLOB, nested and wide
numeric columns, distinct values with their row counts, plus view definitions and comments; a file
another connection holds is copied with its WAL first), SQLite (a copy is opened, so a WAL is replayed
without touching the original; every table, values as text, JSON or bytes, zlib/gzip blobs inflated),
Parquet (every leaf of nested columns, and the key-value metadata), xlsx (every cell, plus document
properties and comments; unreferenced shared strings are not read), zip and gzip (unpacked and
dispatched), text (UTF-8, else GB18030; CSV hits name their header column) and anything else as bytes
(UTF-8, and GB18030 for segments that are not UTF-8; ``*.sealed`` files, the BLOB columns of a
``vault*.duckdb`` and the ``nonce``/``ciphertext`` BLOB columns of the warehouse's sealed quarantine
tables (``meta.quarantine``, ``meta.quality_quarantine``: `privacy.rowseal`) are ciphertext, read as UTF-8 only: GB18030 turns random bytes into
Han text, one two-character name in a few MB). Limitations: a DuckDB ``*.wal`` cannot be opened
alone and is byte-scanned, so a value it holds in a non-text form (a BIGINT phone) is missed there;
UTF-16 text is not decoded; symlinks are not followed.

**Reports** never hold a raw needle: a hit names its file, location (``schema.table.column``, CSV
column, sheet, ``text``, ``bytes``), position (line, row, cell, offset), needle kind and variant, the
needle masked with ``islandbridge.privacy.masking``, and a short context in which every needle is
masked (the hit itself between « ») and every other digit is ``#``.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import csv
import fnmatch
import gzip
import html
import io
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from islandbridge.privacy import rowseal
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


# ---------------------------------------------------------------------------------------------------
# Needles


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


# ---------------------------------------------------------------------------------------------------
# Needles from a simulated street

_NAME_FIELDS = ("name", "reporter_name", "xm", "户主姓名", "姓名")
_ID_FIELDS = ("id_card", "id_number", "sfzh", "身份证号码", "身份证号")
_PHONE_FIELDS = ("phone", "reporter_phone", "lxdh", "联系电话")
_CARD_FIELDS = ("银行卡号",)
_CONTACT = re.compile(f"联系人([{_HAN}{_NAME_SEPARATORS}]{{2,12}}?)(?:电话|手机|[，,：:\\s]|$)")


def needles_from_street(street_dir: Path) -> Needles:
    """Every ID number, phone, bank card and name in a simulated street's truth and source files.

    Reads ``truth/persons.csv``, ``registry/rrs.sqlite`` (``t_jm``), ``grid/*.json`` (residents,
    workers, event reporters and the names and phones inside event descriptions), ``civil/*.xlsx`` and
    ``civil/*.csv`` (GB18030) and ``iot/cardholders.json``, without writing anything; of a living street
    (``simulate --days``), those of the root and of every ``days/<YYYY-MM-DD>/``. Missing parts are
    skipped; ``FileNotFoundError`` when the folder holds no street at all.

    >>> needles_from_street(Path("var/demo/street")).counts()["phone/mobile"]   # 3,000 residents
    2208
    """
    street_dir = Path(street_dir)
    days = sorted(p for p in street_dir.glob("days/*") if p.is_dir())  # a living street (simulate --days)
    if not any(
        (d / "truth" / "persons.csv").exists() or (d / "registry").exists() for d in [street_dir, *days]
    ):
        raise FileNotFoundError(
            f"{street_dir} holds no simulated street (no truth/persons.csv, no registry/, no days/*/); "
            "pass the folder given to `islandbridge simulate`"
        )
    needles = Needles()
    for folder in [street_dir, *days]:  # every day's truth, registry and rosters: whoever lived there
        for record in _street_records(folder):
            _add_record(needles, record)
    return needles


def _street_records(street: Path) -> Iterator[dict]:
    persons = street / "truth" / "persons.csv"
    if persons.exists():
        with persons.open(encoding="utf-8", newline="") as f:
            yield from ({"name": r["name"], "id_number": r["id_number"]} for r in csv.DictReader(f))
    registry = street / "registry" / "rrs.sqlite"
    if registry.exists():
        # immutable: a read that takes no lock and writes no -shm/-wal beside the file
        con = sqlite3.connect(f"{registry.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            con.row_factory = sqlite3.Row
            yield from (dict(r) for r in con.execute("SELECT xm, sfzh, lxdh FROM t_jm"))
        finally:
            con.close()
    for path in sorted([*street.glob("grid/*.json"), *street.glob("iot/cardholders.json")]):
        data = json.loads(path.read_text(encoding="utf-8"))
        items = (
            data if isinstance(data, list) else next((v for v in data.values() if isinstance(v, list)), [])
        )
        yield from (item for item in items if isinstance(item, dict))
    for path in sorted(street.glob("civil/*.xlsx")):
        yield from _roster_rows(_xlsx_rows(path))
    for path in sorted(street.glob("civil/*.csv")):
        with path.open(encoding="gb18030", newline="") as f:
            yield from _roster_rows(csv.reader(f))


def _add_record(needles: Needles, record: dict) -> None:
    for key, value in record.items():
        if value is None or value == "":
            continue
        if key in _NAME_FIELDS:
            needles.add_name(value)
        elif key in _ID_FIELDS:
            needles.add_id(value)
        elif key in _PHONE_FIELDS:
            needles.add_phone(value)
        elif key in _CARD_FIELDS:
            needles.add_bank_card(value)
        elif key in ("description", "title") and isinstance(value, str):
            for name in _CONTACT.findall(value):
                needles.add_name(name)
            for run in _DIGIT_RUN.finditer(value.translate(_FOLD)):
                for number in _mobiles(run.group()):
                    needles.add_phone(number)


def _xlsx_rows(path: Path) -> Iterator[tuple]:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet in workbook.worksheets:
            yield from sheet.iter_rows(values_only=True)
    finally:
        workbook.close()


def _roster_rows(rows: Iterable[Sequence]) -> Iterator[dict]:
    """Rows of a roster as dicts keyed by its header (the row that starts with 序号)."""
    header = None
    for row in rows:
        cells = ["" if v is None else v for v in row]
        if header is None:
            if cells and str(cells[0]).strip() == "序号":
                header = [str(c).strip() for c in cells]
            continue
        yield dict(zip(header, cells, strict=False))


# ---------------------------------------------------------------------------------------------------
# Hits and results


@dataclass(frozen=True)
class Hit:
    """One occurrence of a needle, with masks only (``_raw`` serves ``inside`` and is never shown)."""

    file: str  # relative to the scanned root; "a.zip!member" for a member of an archive
    location: str  # schema.table.column, parquet column, CSV column, sheet, "text", "bytes"
    position: str  # "line 12", "rowid 5", "B3", "offset ~4096"; "" for a column's distinct values
    kind: str
    variant: str
    masked: str
    context: str
    rows: int = 1  # rows holding the value: DuckDB and Parquet columns are read as distinct values
    embedded: bool = False
    via: str = ""  # how the text was obtained when not plain UTF-8: gb18030, json-escape, gzip, bytes...
    _raw: str = field(default="", repr=False, compare=False)
    _span: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)

    def inside(self, term: str) -> bool:
        """True when this occurrence lies within an occurrence of ``term`` (an estate, a category)."""
        start, end = self._span
        at = self._raw.find(term)
        while at != -1:
            if at <= start and end <= at + len(term):
                return True
            at = self._raw.find(term, at + 1)
        return False

    def to_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "file",
                "location",
                "position",
                "kind",
                "variant",
                "masked",
                "context",
                "rows",
                "embedded",
                "via",
            )
        }

    def __str__(self) -> str:
        where = f"{self.file} :: {self.location}" + (f" :: {self.position}" if self.position else "")
        extra = (" embedded" if self.embedded else "") + (f" via {self.via}" if self.via else "")
        rows = f" x{self.rows}" if self.rows > 1 else ""
        return f"{where}: {self.kind}/{self.variant} {self.masked}{rows}{extra} | {self.context}"


def allow_rules(*, locations: Iterable[str] = (), terms: Iterable[str] = ()) -> Callable[[Hit], bool]:
    """An ``allow`` predicate from location patterns and innocent words.

    ``locations``: ``FILE_GLOB`` or ``FILE_GLOB::LOCATION_GLOB`` (fnmatch, case-sensitive), e.g.
    ``"exports/civil_affairs/*::姓名"`` for a column a policy allows. ``terms``: words such as estate
    names; a name hit lying inside one of them is allowed.

    >>> allow = allow_rules(locations=["exports/*::name"], terms=["江口新居"])
    """
    patterns = [tuple((p.split("::", 1) + ["*"])[:2]) for p in locations]
    words = [t for t in terms if t]

    def allow(hit: Hit) -> bool:
        if any(
            fnmatch.fnmatchcase(hit.file, f) and fnmatch.fnmatchcase(hit.location, loc) for f, loc in patterns
        ):
            return True
        return hit.kind == "name" and any(hit.inside(word) for word in words)

    return allow


@dataclass
class ScanResult:
    """What ``scan_tree`` found. ``ok``: no hit outside ``allow`` and no file left unread."""

    root: Path
    hits: list[Hit] = field(default_factory=list)
    allowed: list[Hit] = field(default_factory=list)
    files: Counter[str] = field(default_factory=Counter)  # files scanned per kind
    bytes_scanned: int = 0
    elapsed: float = 0.0
    excluded: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, message with needles masked)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.hits and not self.errors

    def counts(self, hits: Iterable[Hit] | None = None) -> Counter[tuple[str, str, str]]:
        """Hits per (file, location, kind), a hit on a column's distinct value counting its rows."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for hit in self.hits if hits is None else hits:
            counts[(hit.file, hit.location, hit.kind)] += hit.rows
        return counts

    def summary(self, limit: int = 60) -> str:
        """Counts only: files per kind, bytes, time, hits per file/location/kind (weighted by rows)."""
        files = ", ".join(f"{k} {n}" for k, n in sorted(self.files.items())) or "none"
        lines = [
            f"scanned {sum(self.files.values())} files ({files}), {self.bytes_scanned:,} bytes "
            f"in {self.elapsed:.1f} s; {self.excluded} excluded",
            f"hits: {len(self.hits)} ({sum(h.rows for h in self.hits)} counting rows); "
            f"allowed: {len(self.allowed)}; "
            f"unreadable files: {len(self.errors)}",
        ]
        by_kind = Counter(h.kind for h in self.hits)
        if by_kind:
            embedded = sum(1 for h in self.hits if h.embedded)
            lines.append(
                "by kind: "
                + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items()))
                + f"; {embedded} inside longer text"
            )
        counts = self.counts()
        lines += [
            f"  {file} :: {location} :: {kind}: {rows}"
            for (file, location, kind), rows in counts.most_common(limit)
        ]
        if len(counts) > limit:
            lines.append(f"  ... {len(counts) - limit} more locations")
        lines += [f"  unreadable: {file}: {message}" for file, message in self.errors]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def report(self, limit: int = 50) -> str:
        """The first ``limit`` hits, one a line, masked."""
        lines = [str(hit) for hit in self.hits[:limit]]
        if len(self.hits) > limit:
            lines.append(f"... {len(self.hits) - limit} more hits")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "ok": self.ok,
            "files": dict(self.files),
            "bytes_scanned": self.bytes_scanned,
            "elapsed_s": round(self.elapsed, 3),
            "excluded": self.excluded,
            "errors": [list(e) for e in self.errors],
            "notes": self.notes,
            "hits": [h.to_dict() for h in self.hits],
            "allowed": [h.to_dict() for h in self.allowed],
        }


# ---------------------------------------------------------------------------------------------------
# Scanning


def scan_tree(
    root: Path, needles: Needles, *, exclude: Iterable[Path] = (), allow: Callable[[Hit], bool] | None = None
) -> ScanResult:
    """Scan every file under ``root`` (or ``root`` itself, a file) for ``needles``.

    ``exclude``: files or folders left out (the street itself, say). ``allow``: a predicate for expected
    hits (a policy column, an innocent word; see ``allow_rules``); they go to ``ScanResult.allowed``
    rather than ``hits``. Nothing under ``root`` is written: databases are opened read-only or copied to
    a temporary folder first. A file that cannot be read is listed in ``errors`` and makes the result
    not ``ok``.

    >>> scan_tree(Path("var/demo"), needles, exclude=[Path("var/demo/street")]).summary()
    """
    started = time.perf_counter()
    root = Path(root)
    skip = [Path(p).resolve() for p in exclude]
    scanner = _Scanner(root, needles, allow)
    for path in _walk(root):
        resolved = path.resolve()
        if any(resolved == s or s in resolved.parents for s in skip):
            scanner.result.excluded += 1
            continue
        scanner.scan_file(path.name if path == root else path.relative_to(root).as_posix(), path)
    scanner.result.elapsed = time.perf_counter() - started
    return scanner.result


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if not path.is_symlink():
                yield path


_TEXT_SUFFIXES = {
    ".csv",
    ".tsv",
    ".json",
    ".jsonl",
    ".ndjson",
    ".html",
    ".htm",
    ".log",
    ".txt",
    ".yml",
    ".yaml",
    ".md",
    ".xml",
    ".cfg",
    ".ini",
    ".toml",
    ".sql",
    ".py",
    ".out",
    ".err",
}
_SEALED_NOTE = (
    "*.sealed files, the vault's BLOB columns and the quarantine tables' nonce and ciphertext are ciphertext: "
    "read as UTF-8 bytes only (the form a "
    "value written unencrypted would take), since GB18030 decodes random bytes into Han text"
)
# the BLOB columns of AES-GCM output in the warehouse: the sealed quarantine rows' (privacy.rowseal) only,
# so a plaintext written by mistake into a column of that name elsewhere is still read both ways
_SEALED_COLUMNS = {
    (*seal.table.split("."), column)
    for seal in (rowseal.CONNECTOR, rowseal.QUALITY)
    for column in ("nonce", "ciphertext")
}
_CHUNK = 8 << 20
_OVERLAP = 256  # bytes carried between chunks of a byte scan: more than the longest needle
_BATCH = 20_000
_CONTEXT = 14
_WAL_NOTE = (
    "DuckDB *.wal files are byte-scanned (they cannot be opened alone): a value held there in a "
    "non-text form (a BIGINT phone) would be missed"
)


class _Scanner:
    def __init__(self, root: Path, needles: Needles, allow: Callable[[Hit], bool] | None) -> None:
        self.needles, self.allow = needles, allow
        self.result = ScanResult(root=root)

    def scan_file(self, rel: str, path: Path) -> None:
        try:
            size = path.stat().st_size
            kind = _file_kind(path.name, _head(path))
            self.result.files[kind] += 1
            self.result.bytes_scanned += size
            if size:
                self._dispatch(rel, path, kind, "")
        except Exception as exc:  # noqa: BLE001 - an unreadable file is reported, and the scan goes on
            message = self.needles.redact(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
            self.result.errors.append((rel, message))

    def _dispatch(self, rel: str, path: Path, kind: str, via: str) -> None:
        getattr(self, f"_scan_{kind}")(rel, path, via)

    # -- containers ---------------------------------------------------------------------------------

    def _scan_gzip(self, rel: str, path: Path, via: str) -> None:
        with tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            inner = Path(tmp) / (path.name.removesuffix(".gz") if path.name.endswith(".gz") else "inner")
            with gzip.open(path, "rb") as src, inner.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            self._dispatch(rel, inner, _file_kind(inner.name, _head(inner)), _join_via(via, "gzip"))

    def _scan_zip(self, rel: str, path: Path, via: str) -> None:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            for index, info in enumerate(archive.infolist()):
                if info.is_dir():
                    continue
                target = Path(tmp) / f"{index}-{Path(info.filename).name}"
                with archive.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                kind = _file_kind(target.name, _head(target))
                self._dispatch(f"{rel}!{info.filename}", target, kind, _join_via(via, "zip"))
                target.unlink()

    # -- structured files --------------------------------------------------------------------------

    def _scan_duckdb(self, rel: str, path: Path, via: str) -> None:
        import duckdb

        # the vault's BLOB columns are AES-GCM ciphertext (privacy.vault_columns)
        vault = path.name.lower().startswith("vault")
        with _duckdb_readonly(path) as (con, copied):
            if copied:
                self.result.notes.append(f"{rel}: held by another connection; scanned a copy with its WAL")
            for location, text in con.sql(_DUCKDB_CATALOG).fetchall():
                self.values(rel, location, [text], via=via)
            for schema, table, column, data_type in con.sql(_DUCKDB_COLUMNS).fetchall():
                how, location = _duckdb_reading(data_type), f"{schema}.{table}.{column}"
                if how is None:
                    continue
                # and so are the quarantine tables' sealed rows (privacy.rowseal), in the warehouse: read as
                # GB18030, the ~2 KB of them a demo run leaves held a name once in about 7,500 runs
                ciphertext = vault or (how == "blob" and (schema, table, column.lower()) in _SEALED_COLUMNS)
                if ciphertext and _SEALED_NOTE not in self.result.notes:
                    self.result.notes.append(_SEALED_NOTE)
                try:
                    self._duckdb_column(
                        rel,
                        con,
                        location,
                        f"{_ident(schema)}.{_ident(table)}",
                        _ident(column),
                        how,
                        via,
                        ciphertext=ciphertext,
                    )
                except duckdb.Error as exc:
                    self.result.errors.append((rel, f"{location}: {type(exc).__name__}"))

    def _duckdb_column(
        self, rel: str, con, location: str, source: str, column: str, how: str, via: str, *, ciphertext: bool
    ) -> None:
        value = column if how == "blob" else f"CAST({column} AS VARCHAR)"
        having = {"number": " HAVING length(v) >= 10", "text": " HAVING regexp_matches(v, $prefilter)"}.get(
            how, ""
        )
        parameters = {"prefilter": self.needles.sql_prefilter()} if how == "text" else {}
        cursor = con.execute(
            f"SELECT {value} AS v, count(*) FROM {source} WHERE {column} IS NOT NULL GROUP BY ALL{having}",
            parameters,
        )
        while batch := cursor.fetchmany(_BATCH):
            if how == "blob":
                for data, rows in batch:
                    self.blob(rel, location, bytes(data), "", via, rows, ciphertext=ciphertext)
            else:
                self.values(rel, location, [v for v, _ in batch], rows=[n for _, n in batch], via=via)

    def _scan_sqlite(self, rel: str, path: Path, via: str) -> None:
        # A copy, so that a WAL is replayed and no -shm/-wal is created beside the original.
        with tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            copy = Path(tmp) / "db.sqlite"
            shutil.copyfile(path, copy)
            for suffix in ("-wal", "-journal"):
                sibling = path.with_name(path.name + suffix)
                if sibling.exists():
                    shutil.copyfile(sibling, copy.with_name(copy.name + suffix))
            con = sqlite3.connect(copy)
            try:
                con.text_factory = _text_or_bytes
                for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                    self._sqlite_table(rel, con, table, via)
            finally:
                con.close()

    def _sqlite_table(self, rel: str, con: sqlite3.Connection, table: str, via: str) -> None:
        names = [row[1] for row in con.execute(f"PRAGMA table_info({_ident(table)})")]
        try:
            cursor, prefix = con.execute(f"SELECT rowid, * FROM {_ident(table)}"), "rowid "
        except sqlite3.OperationalError:  # a WITHOUT ROWID table
            cursor, prefix = con.execute(f"SELECT NULL, * FROM {_ident(table)}"), ""
        while batch := cursor.fetchmany(5_000):
            for i, column in enumerate(names, start=1):
                self._cells(rel, f"{table}.{column}", [(row[0], row[i]) for row in batch], prefix, via)

    def _cells(self, rel: str, location: str, cells: list[tuple], prefix: str, via: str) -> None:
        texts, positions = [], []
        for key, value in cells:
            position = f"{prefix}{key}" if key is not None else ""
            if isinstance(value, bytes):
                self.blob(rel, location, value, position, via)
            elif isinstance(value, str) or (isinstance(value, int | float) and abs(value) >= 1e9):
                texts.append(repr(value) if isinstance(value, float) else str(value))
                positions.append(position)
        self.values(rel, location, texts, positions=positions, via=via)

    def _scan_parquet(self, rel: str, path: Path, via: str) -> None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        for key, value in (parquet.schema_arrow.metadata or {}).items():
            self.blob(rel, "metadata", key + b"=" + value, "", via)
        for batch in parquet.iter_batches(batch_size=65_536):
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                for location, array, how in _arrow_leaves(name, column):
                    if how == "number":
                        array = pc.cast(array, "string")
                        array = array.filter(pc.greater_equal(pc.utf8_length(array), 10))
                    counted = pc.value_counts(array.drop_null())
                    values, rows = counted.field("values").to_pylist(), counted.field("counts").to_pylist()
                    if how == "blob":
                        for value, n in zip(values, rows, strict=True):
                            self.blob(rel, location, value, "", via, n)
                    else:
                        self.values(rel, location, values, rows=rows, via=via)

    def _scan_xlsx(self, rel: str, path: Path, via: str) -> None:
        import openpyxl
        from openpyxl.utils import get_column_letter

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            for sheet in workbook.worksheets:
                # A cell below a header row is located by its column's header, "<sheet>/<header>", so
                # that an allow rule can name a column a policy permits, as it does for CSV.
                cells: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
                header: tuple = ()
                for r, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                    header = row if r == 1 else header
                    for c, value in enumerate(row, start=1):
                        if isinstance(value, str | int | float) and not isinstance(value, bool):
                            named = r > 1 and c <= len(header) and isinstance(header[c - 1], str)
                            texts, positions = cells[
                                f"{sheet.title}/{header[c - 1]}" if named else sheet.title
                            ]
                            texts.append(repr(value) if isinstance(value, float) else str(value))
                            positions.append(f"{get_column_letter(c)}{r}")
                for location, (texts, positions) in cells.items():
                    self.values(rel, location, texts, positions=positions, via=via)
        finally:
            workbook.close()
        # Document properties (creator, title), comments and custom XML live outside the cells.
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename
                if name.endswith((".xml", ".rels")) and not name.startswith(
                    ("xl/worksheets/", "xl/sharedStrings")
                ):
                    self.values(rel, name, [archive.read(info).decode("utf-8", errors="replace")], via=via)

    # -- text and bytes ----------------------------------------------------------------------------

    def _scan_text(self, rel: str, path: Path, via: str) -> None:
        is_csv = path.suffix.lower() in (".csv", ".tsv")
        for encoding in ("utf-8", "gb18030"):
            try:
                hits = self._text_hits(rel, path, encoding, via, is_csv)
            except UnicodeDecodeError:
                continue
            for hit in hits:
                self._emit(hit)
            if encoding != "utf-8":
                # Valid GB18030 can still be UTF-8 text with a stray byte: look for UTF-8 names as well.
                with path.open("rb") as f:
                    self._bytes_stream(rel, f, via, names_only=True, gb18030=False)
            return
        self._scan_bytes(rel, path, via)

    def _scan_bytes(self, rel: str, path: Path, via: str) -> None:
        with path.open("rb") as f:
            self._bytes_stream(rel, f, via)

    def _scan_sealed(self, rel: str, path: Path, via: str) -> None:
        """A sealed file (AES-GCM, `privacy.sealed_files`) is ciphertext: bytes as UTF-8 only, never GB18030."""
        if _SEALED_NOTE not in self.result.notes:
            self.result.notes.append(_SEALED_NOTE)
        with path.open("rb") as f:
            self._bytes_stream(rel, f, via, gb18030=False)

    def _scan_wal(self, rel: str, path: Path, via: str) -> None:
        if _WAL_NOTE not in self.result.notes:
            self.result.notes.append(_WAL_NOTE)
        self._scan_bytes(rel, path, via)

    def _text_hits(self, rel: str, path: Path, encoding: str, via: str, is_csv: bool) -> list[Hit]:
        """Hits of a whole text file, decoded strictly (``UnicodeDecodeError`` if it is not ``encoding``)."""
        via = _join_via(via, "" if encoding == "utf-8" else encoding)
        hits: list[Hit] = []
        header = None
        for first_line, chunk in _decoded_chunks(path, encoding):
            if is_csv and header is None:
                header = next(csv.reader([chunk.split("\n", 1)[0]]), [])
            plain: set[tuple[int, int]] = set()  # (line, needle) found without decoding escapes
            for chunk_via, text in [(via, chunk), *_escaped_variants(chunk, via)]:
                matches = self.needles.find(text)
                starts = [m.start for m in matches]
                line, cursor = first_line, 0
                for m in matches:
                    line += text.count("\n", cursor, m.start)
                    cursor = m.start
                    if chunk_via == via:
                        plain.add((line, m.needle.index))
                    elif (line, m.needle.index) in plain:
                        continue
                    location = "text" if header is None else _csv_column(header, text, m.start)
                    hits.append(
                        self._hit(rel, location, f"line {line}", text, matches, starts, m, 1, chunk_via)
                    )
        return hits

    def _bytes_stream(
        self,
        rel: str,
        f: BinaryIO,
        via: str,
        *,
        position: str | None = None,
        rows: int = 1,
        location: str = "bytes",
        names_only: bool = False,
        gb18030: bool = True,
    ) -> None:
        """UTF-8 (bad bytes replaced) over overlapping chunks; GB18030 names in segments that are not UTF-8."""
        tail, offset = b"", 0
        while data := f.read(_CHUNK):
            block, base = tail + data, offset - len(tail)
            seen_chars = len(tail.decode("utf-8", errors="replace")) if tail else 0
            text = block.decode("utf-8", errors="replace")
            matches = self.needles.find(text)
            starts = [m.start for m in matches]
            for m in matches:
                if m.end > seen_chars and (not names_only or m.needle.kind == "name"):
                    at = position if position is not None else f"offset ~{base + m.start}"
                    self._emit(
                        self._hit(rel, location, at, text, matches, starts, m, rows, _join_via(via, "bytes"))
                    )
            if gb18030:
                for segment in _GB_SEGMENT.finditer(block):
                    if segment.end() > len(tail):
                        at = position if position is not None else f"offset ~{base + segment.start()}"
                        self._gb18030_names(rel, location, at, segment.group(), rows, via)
            tail, offset = block[-_OVERLAP:], offset + len(data)

    def _gb18030_names(
        self, rel: str, location: str, position: str, data: bytes, rows: int, via: str
    ) -> None:
        try:
            data.decode("utf-8")
            return  # UTF-8 text: scanned as such
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            return
        matches = [m for m in self.needles.find(text) if m.needle.kind == "name"]
        starts = [m.start for m in matches]
        for m in matches:
            self._emit(
                self._hit(rel, location, position, text, matches, starts, m, rows, _join_via(via, "gb18030"))
            )

    def blob(
        self,
        rel: str,
        location: str,
        data: bytes,
        position: str,
        via: str,
        rows: int = 1,
        *,
        ciphertext=False,
    ) -> None:
        """A binary value: inflated if zlib/gzip, read as text if it decodes, else scanned as bytes;
        ``ciphertext``: UTF-8 only, never GB18030 (random bytes decode into Han text)."""
        if data[:2] == b"\x1f\x8b" or (
            len(data) > 2 and data[0] == 0x78 and (data[0] << 8 | data[1]) % 31 == 0
        ):
            with contextlib.suppress(OSError, zlib.error, EOFError):
                data, via = _inflate(data), _join_via(via, "gzip" if data[:2] == b"\x1f\x8b" else "zlib")
        for encoding in ("utf-8",) if ciphertext else ("utf-8", "gb18030"):
            with contextlib.suppress(UnicodeDecodeError):
                text = data.decode(encoding)
                self.values(
                    rel,
                    location,
                    [text],
                    rows=[rows],
                    positions=[position],
                    via=_join_via(via, "" if encoding == "utf-8" else encoding),
                )
                return
        self._bytes_stream(
            rel,
            io.BytesIO(data),
            via,
            position=position,
            rows=rows,
            location=location,
            gb18030=not ciphertext,
        )

    def values(
        self,
        rel: str,
        location: str,
        values: Sequence[str],
        *,
        rows: Sequence[int] | None = None,
        positions: Sequence[str] | None = None,
        via: str = "",
    ) -> None:
        """Scan many short texts: joined with NUL (which no pattern crosses) so the regexes run in C."""
        for at in range(0, len(values), _BATCH):
            batch = [v.replace("\x00", " ") for v in values[at : at + _BATCH]]
            starts, offset = [], 0
            for value in batch:
                starts.append(offset)
                offset += len(value) + 1
            joined = "\x00".join(batch)
            grouped: dict[int, list[_Match]] = defaultdict(list)
            for m in self.needles.find(joined):
                grouped[bisect.bisect_right(starts, m.start) - 1].append(m)
            escaped = (
                [i for i, v in enumerate(batch) if _ESCAPES.search(v)] if _ESCAPES.search(joined) else []
            )
            for i in sorted(set(grouped) | set(escaped)):
                n = rows[at + i] if rows else 1
                position = positions[at + i] if positions else ""
                self._value_hits(
                    rel, location, position, batch[i], [_shift(m, -starts[i]) for m in grouped[i]], n, via
                )

    def _value_hits(
        self, rel: str, location: str, position: str, value: str, matches: list[_Match], rows: int, via: str
    ) -> None:
        """One hit per needle in a value (``rows`` says how often the value occurs), escapes decoded too."""
        seen = set()
        for value_via, text, found in [
            (via, value, matches),
            *((v, t, self.needles.find(t)) for v, t in _escaped_variants(value, via)),
        ]:
            starts = [m.start for m in found]
            for m in found:
                if m.needle.index not in seen:
                    seen.add(m.needle.index)
                    self._emit(self._hit(rel, location, position, text, found, starts, m, rows, value_via))

    def _hit(
        self,
        rel: str,
        location: str,
        position: str,
        text: str,
        matches: list[_Match],
        starts: list[int],
        m: _Match,
        rows: int,
        via: str,
    ) -> Hit:
        lo, hi = max(0, m.start - _CONTEXT), min(len(text), m.end + _CONTEXT)
        return Hit(
            rel,
            location,
            position,
            m.needle.kind,
            m.needle.variant,
            m.needle.masked,
            _masked_context(text, matches, starts, m),
            rows,
            m.embedded,
            via,
            _raw=text[lo:hi],
            _span=(m.start - lo, m.end - lo),
        )

    def _emit(self, hit: Hit) -> None:
        (self.result.allowed if self.allow is not None and self.allow(hit) else self.result.hits).append(hit)


# ---------------------------------------------------------------------------------------------------
# Helpers

_DUCKDB_CATALOG = """
SELECT 'view ' || schema_name || '.' || view_name, sql FROM duckdb_views() WHERE NOT internal
UNION ALL
SELECT 'comment ' || schema_name || '.' || table_name, comment FROM duckdb_tables() WHERE comment IS NOT NULL
UNION ALL
SELECT 'comment ' || schema_name || '.' || table_name || '.' || column_name, comment FROM duckdb_columns()
WHERE comment IS NOT NULL
"""
_DUCKDB_COLUMNS = """
SELECT c.schema_name, c.table_name, c.column_name, c.data_type FROM duckdb_columns() c
JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
WHERE c.database_name = current_database() ORDER BY ALL
"""
_DUCKDB_NUMBERS = ("BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT", "DOUBLE", "DECIMAL")

_GB_SEGMENT = re.compile(rb"[\x09\x0a\x0d\x20-\x7e\x81-\xfe]{4,}")
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


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(64)


def _file_kind(name: str, head: bytes) -> str:
    name = name.lower()
    if name.endswith(".sealed"):
        return "sealed"
    if head[8:12] == b"DUCK":
        return "duckdb"
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx" if name.endswith((".xlsx", ".xlsm")) else "zip"
    if name.endswith(".wal"):
        return "wal"
    if Path(name).suffix in _TEXT_SUFFIXES or (head and b"\x00" not in head):
        return "text"  # text is decoded strictly; what does not decode falls back to a byte scan
    return "bytes"


def _text_or_bytes(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _inflate(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else zlib.decompress(data)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_reading(data_type: str) -> str | None:
    """How a DuckDB column is read: as text, as bytes, as a wide number, or not at all."""
    if data_type == "BLOB":
        return "blob"
    if (
        data_type in ("VARCHAR", "JSON")
        or data_type.startswith(("ENUM", "STRUCT", "MAP", "UNION"))
        or data_type.endswith("]")
    ):
        return "text"
    if data_type.startswith(_DUCKDB_NUMBERS):
        return "number"
    return None


@contextlib.contextmanager
def _duckdb_readonly(path: Path):
    """A read-only connection (under the machine-derived memory limit, `storage.connect`); a file held by
    another connection is copied (with its WAL) first."""
    import duckdb

    from islandbridge import storage

    try:
        con = storage.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        message = str(exc).lower()
        if "lock" not in message and "different configuration" not in message:
            raise
        with tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            copy = Path(tmp) / "copy.duckdb"
            shutil.copyfile(path, copy)
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            con = storage.connect(str(copy), read_only=True)
            try:
                yield con, True
            finally:
                con.close()
        return
    try:
        yield con, False
    finally:
        con.close()


def _arrow_leaves(name: str, array) -> Iterator[tuple[str, object, str]]:
    """(column path, array, how) for every leaf worth reading: text, bytes or a wide number."""
    import pyarrow as pa
    import pyarrow.types as t

    kind = array.type
    if t.is_dictionary(kind):
        yield from _arrow_leaves(name, array.dictionary_decode())
    elif t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        yield from _arrow_leaves(f"{name}[]", array.flatten())
    elif t.is_map(kind):
        yield from _arrow_leaves(f"{name}.key", array.keys)
        yield from _arrow_leaves(f"{name}.value", array.items)
    elif t.is_struct(kind):
        for i in range(kind.num_fields):
            yield from _arrow_leaves(f"{name}.{kind.field(i).name}", array.field(i))
    elif t.is_string(kind) or t.is_large_string(kind) or t.is_string_view(kind):
        yield name, array.cast(pa.large_string()) if t.is_string_view(kind) else array, "text"
    elif (
        t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind) or t.is_binary_view(kind)
    ):
        yield name, array.cast(pa.large_binary()), "blob"
    elif t.is_int64(kind) or t.is_uint64(kind) or t.is_decimal(kind) or t.is_float64(kind):
        yield name, array, "number"
