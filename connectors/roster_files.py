"""Reading one civil-affairs roster file (.xlsx or .csv) into rows, defensively.

The files are typed by people in Excel and dropped into a shared folder, so every step assumes the worst:
an ``.xlsx`` is checked as a zip (entry sizes and compression ratios, against zip bombs) before openpyxl
parses it with entity-expanding XML disabled; a ``.csv`` has its encoding detected among UTF-8, GB18030
and GBK rather than assumed; the header row is found below any title rows by its cells; the ``合计``
totals row ends the roster and is checked against the sum of the rows, in ``Decimal``.

Values are returned exactly as the file holds them (an Excel-damaged ``4.201021959100794e+17`` stays a
float, ``'5114…`` keeps its apostrophe): repairing is not this module's business. The one change is
faithful to the cell: an ID-number cell of an ``.xlsx`` that is a *number* is returned as the float
(IEEE double) an Excel number cell is, even when the XML spells it as an integer
(``360102200210121000``), so it is landed as ``3.60102200210121e+17`` and reads as Excel damage
whatever its check digit.

Only the workbook's visible worksheets are candidates (a hidden sheet may hold a stale roster); of
several visible ones the one with a roster header is read, and if more than one has such a header the
file is refused. Rows after the ``合计`` row are read too: signatures and notes there are ignored, but
a row that looks like data (a numeric 序号 or an ID) means the 合计 was a subtotal inside the roster,
and every row of the file is then refused with that reason rather than silently dropped.

A file that cannot be turned into rows raises ``RosterError`` whose message is the reason a person reads;
no message ever quotes a cell, so no personal data reaches logs or the quarantine's reason column.

Example::

    roster = parse_roster(data, "xlsx", DIBAO, Limits(max_rows=200_000, max_unzipped_bytes=500 << 20))
    problem = totals_problem(roster, DIBAO)
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import charset_normalizer
from defusedxml import DefusedXmlException

from islandbridge.errors import FatalSourceError, count, noun

HEADER_SCAN_ROWS = 20  # title rows above the header: 2 in practice
MAX_COLUMNS = 64  # cells read per xlsx row; a roster has about a dozen
MAX_ZIP_ENTRIES = 500
MAX_RATIO = 100  # deflate on sheet XML gives 5-20x; a bomb gives 1000x
RATIO_FLOOR = 1 << 20  # small entries may compress well without being dangerous
TOTAL_MARKERS = ("合计", "总计")
ID_COLUMNS = ("身份证号码", "身份证号")
ENCODINGS = ("utf_8", "gb18030", "gbk")
NAMED_EXTRA = ("备注", "说明", "备注说明")  # extra header words named as typed; any other is described
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE2 compound file: Excel 97-2003 (BIFF)
ZIP_MAGIC = b"PK\x03\x04"
SAVE_AS = "ask the bureau to save it as .xlsx (Excel: 文件 → 另存为 → Excel 工作簿 *.xlsx) and put that file "
PUT = {  # where the saved file goes, by the refused file's extension
    "xls": "in the folder under the same name with .xlsx, and remove the .xls",
    "xlsx": "in the folder in place of this one",
}
# An encrypted .xlsx is an OLE2 compound file too; its directory names this stream (UTF-16LE, as OLE2
# stores names), which a BIFF workbook has not.
ENCRYPTED = "EncryptedPackage".encode("utf-16-le")


class RosterError(FatalSourceError):
    """The file cannot be read as a roster; the message is the reason (never quotes a cell).

    Terminal (a ``FatalSourceError``): the bureau must send a readable file. The civil-files connector
    catches it per file and records the file as rejected, so it does not stop a run."""


@dataclass(frozen=True)
class Layout:
    """One programme's roster: its columns as the bureau writes them, and the columns ``合计`` sums."""

    programme: str
    stream: str
    columns: tuple[str, ...]
    sums: tuple[str, ...]
    optional_sums: tuple[str, ...] = ()


DIBAO = Layout(
    "低保",
    "dibao",
    (
        "序号",
        "户主姓名",
        "身份证号码",
        "家庭人口",
        "保障人数",
        "联系电话",
        "家庭住址",
        "保障类别",
        "月保障金(元)",
        "发放年月",
        "所属社区",
    ),
    sums=("月保障金(元)",),
    optional_sums=("保障人数",),
)
SENIOR = Layout(
    "高龄补贴",
    "senior",
    (
        "序号",
        "姓名",
        "性别",
        "身份证号",
        "出生年月",
        "年龄",
        "补贴标准(元/月)",
        "发放金额",
        "银行卡号",
        "所属社区",
    ),
    sums=("发放金额",),
)
LAYOUTS = {layout.programme: layout for layout in (DIBAO, SENIOR)}


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_unzipped_bytes: int


@dataclass(frozen=True)
class DataRow:
    """One data row: its 1-based row number in the file, its cells by column, and a shape problem."""

    number: int
    values: dict[str, Any]
    problem: str | None = None


@dataclass
class Roster:
    rows: list[DataRow] = field(default_factory=list)
    totals: dict[str, Any] | None = None
    #: Why no row of the file can be trusted although each could be read (data below the 合计 row, a
    #: header missing or repeating a column).
    problem: str | None = None
    #: Header cells beyond the layout's columns (a clerk's 备注), as `extra_column` describes them (never
    #: the text typed, except a harmless word); their values are never read.
    extra_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Header:
    """The header row: each layout column's index (None: missing), the row's width (to its last named
    cell), the columns not in the layout, and why no row can be trusted (a column missing or repeated)."""

    index: dict[str, int | None]
    width: int
    extra: tuple[str, ...] = ()
    problem: str | None = None


def parse_roster(data: bytes, ext: str, layout: Layout, limits: Limits) -> Roster:
    """Read a roster's data rows and totals row; ``ext`` in any case (`file_format` decides how to read
    an ``.xls``). Raises ``RosterError`` with the reason."""
    kind = file_format(data, ext)
    if kind == "xlsx":
        rows, ragged, cell = _xlsx_rows(data, layout, limits), _extra_cells, _xlsx_cell
    else:
        rows, ragged, cell = _csv_rows(decode_text(data)), _wrong_width, _same
    with closing(rows):  # an error part-way must still close the workbook
        return _collect(rows, layout, limits, ragged, cell)


def file_format(data: bytes, ext: str) -> str:
    """How to read a roster named ``.{ext}``: ``xlsx`` or ``csv``, by its content where the name may lie.
    An ``.xls`` that is a zip is an Excel 2007+ workbook saved under the old extension and is read as one;
    a real Excel 97-2003 (BIFF) workbook cannot be read (openpyxl reads only 2007+), so it is refused with
    what the bureau should do rather than ignored; so is a password-protected workbook (an OLE2 file
    holding an ``EncryptedPackage`` stream), with its own advice."""
    ext = ext.lower()
    if ext in ("xls", "xlsx") and data.startswith(OLE2_MAGIC):
        if ENCRYPTED in data:
            raise RosterError(
                "an encrypted workbook, which cannot be read, as it is password-protected: ask for it "
                "without a password (Excel: 文件 → 信息 → 保护工作簿 → 用密码进行加密, clear it, save) and "
                f"put that file {PUT[ext]}"
            )
        raise RosterError(
            f"an Excel 97-2003 workbook (.xls, BIFF format), which cannot be read: {SAVE_AS}{PUT[ext]}"
        )
    if ext == "xls":
        if data.startswith(ZIP_MAGIC):
            return "xlsx"
        raise RosterError(
            f"named .xls but neither an Excel 97-2003 nor an Excel 2007+ workbook: {SAVE_AS}{PUT[ext]}"
        )
    if ext not in ("xlsx", "csv"):
        raise RosterError(f"unsupported file type .{ext}; expected .xlsx or .csv")
    return ext


# --------------------------------------------------------------------------- xlsx


def check_zip(data: bytes, limits: Limits) -> None:
    """Reject what is not a zip, and zip bombs, before any XML is parsed (sizes from the directory;
    ``zipfile`` stops at the declared size, so an entry that lies about it fails its CRC instead)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise RosterError(
            "not a valid .xlsx: not a zip archive (truncated, corrupt, or another format "
            "renamed to .xlsx); ask the bureau to export it again"
        ) from None
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise RosterError(f"the .xlsx holds {len(entries)} zip entries (at most {MAX_ZIP_ENTRIES} read)")
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise RosterError(
                f"zip entry {entry.filename!r} expands {ratio:.0f}x (at most {MAX_RATIO}x): "
                "a zip bomb, not read"
            )
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_unzipped_bytes:
        raise RosterError(
            f"the .xlsx expands to {total >> 20} MB (at most {limits.max_unzipped_bytes >> 20} MB): not read"
        )


def _xlsx_rows(data: bytes, layout: Layout, limits: Limits) -> Iterator[tuple[int, tuple[Any, ...]]]:
    check_zip(data, limits)
    import defusedxml
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default style" and similar noise from exporters
            defusedxml.defuse_stdlib()  # openpyxl parses with the stdlib: no entity expansion, no DTDs
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure of a hostile file is a reason, not a crash
        raise RosterError(_workbook_reason(exc)) from None
    try:
        yield from _sheet_rows(book, layout, limits)
    finally:
        book.close()


def _sheet_rows(book, layout: Layout, limits: Limits) -> Iterator[tuple[int, tuple[Any, ...]]]:
    try:
        sheet = _roster_sheet(book, layout)
        max_row = HEADER_SCAN_ROWS + 2 * limits.max_rows + 100
        for number, cells in enumerate(_cells(sheet, max_row + 1), start=1):
            if number > max_row:
                raise RosterError(f"the sheet has more than {max_row} rows (max_rows): not read")
            yield number, cells
    except RosterError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise RosterError(_workbook_reason(exc)) from None


def _cells(sheet, max_row: int) -> Iterator[tuple[Any, ...]]:
    sheet.reset_dimensions()  # a forged dimension (A1:XFD1048576) must not size what we read
    return sheet.iter_rows(max_row=max_row, max_col=MAX_COLUMNS, values_only=True)


def _roster_sheet(book, layout: Layout):
    """The worksheet that holds the roster: the only visible one, or of several visible ones the only one
    with a roster header near its top. Hidden sheets (a stale roster, a lookup list) are never read."""
    if not book.worksheets:
        raise RosterError("the workbook has no worksheet")
    visible = [(n, ws) for n, ws in enumerate(book.worksheets, start=1) if ws.sheet_state == "visible"]
    if not visible:
        raise RosterError("the workbook has no visible worksheet: every sheet is hidden")
    if len(visible) == 1:
        return visible[0][1]
    headed = [(n, ws) for n, ws in visible if _has_header(_cells(ws, HEADER_SCAN_ROWS))]
    if len(headed) > 1:
        raise RosterError(
            f"worksheets {', '.join(str(n) for n, _ in headed)} are all visible and all have a "
            f"{layout.programme} header: which one is the roster is not clear; ask the bureau for a "
            "workbook with one roster sheet"
        )
    return (headed or visible)[0][1]


def _has_header(rows: Iterable[tuple[Any, ...]]) -> bool:
    return any(_is_header([_norm(c) for c in cells]) for cells in rows)


def _workbook_reason(exc: BaseException) -> str:
    """openpyxl wraps parser errors in ValueError, so look down the chain for defusedxml's refusal."""
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, DefusedXmlException):
            return (
                f"the workbook's XML declares a DTD or entities ({type(link).__name__}): "
                "an XML bomb, not read"
            )
        link = link.__cause__ or link.__context__
    return (
        f"cannot read the workbook ({type(exc).__name__}): the file is damaged or not an Excel 2007+ workbook"
    )


# --------------------------------------------------------------------------- csv


def decode_text(data: bytes) -> str:
    """Decode a CSV whose encoding is detected, not assumed; a wrong claim is a reason."""
    if b"\x00" in data:
        raise RosterError("the file contains NUL bytes: binary or UTF-16, not a text CSV")
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RosterError(
                f"starts with a UTF-8 byte-order mark but byte {exc.start + 3} is not UTF-8 "
                "(a GBK file saved with a wrong BOM?)"
            ) from None
    best = charset_normalizer.from_bytes(data, cp_isolation=list(ENCODINGS)).best()
    if best is None:
        # The detector gives up on long repetitive text (a cell of thousands of one character) that is
        # valid GB18030: decide by strict decoding instead; what is neither gets the reason.
        for encoding in ("utf-8", "gb18030"):
            with contextlib.suppress(UnicodeDecodeError):
                return data.decode(encoding)
        raise RosterError("the text is neither UTF-8 nor GB18030/GBK")
    encoding = "utf-8" if best.encoding in ("utf_8", "ascii") else "gb18030"  # GB18030 ⊃ GBK
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise RosterError(f"looks like {encoding} but byte {exc.start} is not valid {encoding}") from None


def _csv_rows(text: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    number = 0
    try:
        for number, row in enumerate(reader, start=1):
            yield number, tuple(row)
    except csv.Error as exc:
        raise RosterError(
            f"malformed CSV after record {number} (line {reader.line_num}): {exc} "
            "(an unterminated quoted field?)"
        ) from None


# --------------------------------------------------------------------------- rows


def _collect(
    rows: Iterator[tuple[int, tuple[Any, ...]]], layout: Layout, limits: Limits, ragged, cell
) -> Roster:
    header = _find_header(rows, layout)
    roster = Roster(problem=header.problem, extra_columns=header.extra)
    totals_row = None
    for number, cells in rows:
        if _blank(cells):
            continue
        if _is_totals(cells, header):
            if totals_row is None:
                roster.totals, totals_row = _by_column(cells, header), number
            continue
        if totals_row is not None and not _looks_like_data(cells, header, layout):
            continue  # below the totals: signatures and notes, not data
        if totals_row is not None and roster.problem is None:
            roster.problem = (
                f"row {number} holds data below the 合计 row (row {totals_row}): a subtotal inside the "
                "roster? every row is refused; ask the bureau for the file with one 合计 row at its end"
            )
        if len(roster.rows) >= limits.max_rows:
            raise RosterError(f"more than {limits.max_rows} data rows (max_rows): not read")
        values = {name: cell(name, value) for name, value in _by_column(cells, header).items()}
        roster.rows.append(DataRow(number, values, ragged(cells, header.width)))
    return roster


def _looks_like_data(cells: Sequence[Any], header: Header, layout: Layout) -> bool:
    """A roster row rather than a signature or note: a number in 序号, anything in the ID column, or a
    number in a summed (money) column."""
    values = _by_column(cells, header)
    if _numeric(values["序号"]) or any(_numeric(values.get(column)) for column in layout.sums):
        return True
    return any(not _empty(values.get(column)) for column in ID_COLUMNS)


def _numeric(value: Any) -> bool:
    if isinstance(value, bool) or _empty(value):
        return False
    try:
        to_decimal(value)
    except ValueError:
        return False
    return True


def _same(column: str, value: Any) -> Any:
    return value


def _xlsx_cell(column: str, value: Any) -> Any:
    """An ID typed into a *number* cell is the double Excel holds, however the XML spells it."""
    if column in ID_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return str(value)
    return value


def _find_header(rows: Iterator[tuple[int, tuple[Any, ...]]], layout: Layout) -> Header:
    """Consume rows up to the header (the row naming 序号 and an ID column) and read it (`_header_map`)."""
    for number, cells in rows:
        names = [_norm(c) for c in cells]
        if _is_header(names):
            return _header_map(names, layout)
        if number >= HEADER_SCAN_ROWS:
            break
    raise RosterError(
        f"no header row (序号 … 身份证号) in the first {HEADER_SCAN_ROWS} rows; "
        f"a {layout.programme} roster has the columns {', '.join(layout.columns)}"
    )


def _is_header(names: Sequence[str]) -> bool:
    return "序号" in names and any(column in names for column in ID_COLUMNS)


def _header_map(names: Sequence[str], layout: Layout) -> Header:
    """Each layout column's index. A column the layout lacks (a 备注 a clerk added) is described in
    ``extra`` (`extra_column`) and never read: the SPEC's columns are all there, and its free text is not landed. A layout
    column missing or repeated is the header's ``problem``: the file's rows are read but none is trusted."""
    width = max((i + 1 for i, n in enumerate(names) if n), default=0)
    present = [n for n in names[:width] if n]
    extra = tuple(
        dict.fromkeys(extra_column(i, n) for i, n in enumerate(names[:width]) if n not in layout.columns)
    )
    missing = [c for c in layout.columns if c not in present]
    repeated = [c for c in layout.columns if present.count(c) > 1]
    index = {c: (names.index(c) if c in present else None) for c in layout.columns}
    if not (missing or repeated):
        return Header(index, width, extra)
    detail = "; ".join(
        part
        for part in (
            missing and f"missing {noun(len(missing), 'column')} {', '.join(missing)}",
            repeated and f"repeated {noun(len(repeated), 'column')} {', '.join(repeated)}",
            extra and f"{count(len(extra), 'column')} not in the SPEC: {', '.join(extra)}",
        )
        if part
    )
    problem = (
        f"header does not match the {layout.programme} roster: {detail}; expected {', '.join(layout.columns)}; "
        "every row is refused: ask the bureau for the file with these columns"
    )
    return Header(index, width, extra, problem)


def extra_column(index: int, name: str) -> str:
    """A header cell the layout lacks, as reasons and the manifest may show it: a harmless word
    (`NAMED_EXTRA`) by itself, anything else by position and size only; a clerk may have typed a name or
    a phone into the header (``王芳代领``, ``联系13800138000``), and no scrubber knows every name."""
    if name in NAMED_EXTRA:
        return name
    return (
        f"column {index + 1} ({count(len(name), 'character')})" if name else f"column {index + 1} (no header)"
    )


def _by_column(cells: Sequence[Any], header: Header) -> dict[str, Any]:
    return {name: cells[i] if i is not None and i < len(cells) else None for name, i in header.index.items()}


def _is_totals(cells: Sequence[Any], header: Header) -> bool:
    first = next((c for c in cells if not _empty(c)), None)
    at = header.index["序号"]
    at_index = cells[at] if at is not None and at < len(cells) else None
    return any(_norm(c) in TOTAL_MARKERS for c in (first, at_index))


def _extra_cells(cells: Sequence[Any], width: int) -> str | None:
    """An xlsx row cannot be short (missing cells are empty), only carry cells beyond the header."""
    extra = [i for i in range(width, len(cells)) if not _empty(cells[i])]
    return f"row has a value beyond the header's {width} columns" if extra else None


def _wrong_width(cells: Sequence[Any], width: int) -> str | None:
    used = len(cells)
    while used > width and _empty(cells[used - 1]):
        used -= 1  # trailing empty fields (a stray comma) change nothing
    return None if used == width else f"row has {used} fields; the header has {width}"


def _blank(cells: Iterable[Any]) -> bool:
    return all(_empty(c) for c in cells)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _norm(value: Any) -> str:
    """Header text for matching only: NFKC (full-width brackets), no whitespace of any kind."""
    if value is None:
        return ""
    return "".join(unicodedata.normalize("NFKC", str(value)).split())


# --------------------------------------------------------------------------- totals


def totals_problem(roster: Roster, layout: Layout) -> str | None:
    """Why the roster fails its ``合计`` check (a truncated or edited file, data below the 合计 row), or
    None if it passes."""
    if roster.problem:
        return roster.problem
    if roster.totals is None:
        return "no 合计 totals row: the file may be truncated"
    for column in (*layout.sums, *layout.optional_sums):
        stated = roster.totals.get(column)
        if _empty(stated):
            if column in layout.sums:
                return f"the 合计 row has no {column}: the file may be damaged"
            continue
        problem = _sum_problem(roster.rows, column, stated)
        if problem:
            return problem
    return None


def _sum_problem(rows: Sequence[DataRow], column: str, stated: Any) -> str | None:
    try:
        expected = to_decimal(stated)
        total = sum((to_decimal(r.values.get(column)) for r in rows), Decimal(0))
    except (InvalidOperation, ValueError) as exc:
        return f"{column}: {exc}; the 合计 check cannot be made"
    if total != expected:
        return (
            f"{column} of the {len(rows)} rows sums to {total}, but the 合计 row states {expected}: "
            "the file is truncated or was edited after totalling"
        )
    return None


def to_decimal(value: Any) -> Decimal:
    """A money or count cell as an exact Decimal (a float through its shortest repr); empty is 0."""
    if _empty(value):
        return Decimal(0)
    if isinstance(value, bool):
        raise ValueError("a true/false cell is not an amount")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError("a cell is not a number") from None
    if not amount.is_finite():
        raise ValueError("a cell is not a finite number")
    return amount
