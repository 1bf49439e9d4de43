"""A report as an ``.xlsx`` workbook that opens right in Excel, WPS and LibreOffice.

The CSV beside it is for programs and for a department's own import routine; the workbook is what a
clerk double-clicks. XlsxWriter writes it (not openpyxl, which the project uses to *read* rosters):
it writes each cell with an explicit type, so an ID number can never become ``5.11402194402204E+017``;
and with a fixed creation time its output is byte-identical for equal input, so re-running a day
replaces the export exactly.

Two sheets:

- the report (its Chinese title): one header row of Chinese labels from the policy, frozen, with a
  filter; text as text cells (ID numbers, phones, person refs — the column is formatted ``@`` so
  a value typed in later stays text too), a code as the Chinese label its policy declares
  (``cell_labels``: ``无候选人员`` for ``no_candidate``; the CSV and Parquet keep the code, and the 说明
  sheet says which label is which code), whole numbers and amounts as numbers (shown with the decimals of
  their column's type: ``0.0`` for 无动静小时数, ``0.00`` for yuan), dates as real dates
  (``yyyy-mm-dd``; a month column, kept as its first day, shows ``yyyy-mm``), date-times as local time
  (``yyyy-mm-dd hh:mm``), column widths that fit the text;
- ``说明`` (definition): what the report is (the policy's Chinese ``definition``, then its English
  ``description``), any note its reader must know first (``注意 note``: e.g. that
  the month's roster has not arrived), the day and run it is for, the department and policy version, and a
  data dictionary row per column (label, English name, where it comes from, meaning: the column's Chinese
  ``description``).

A count under a policy's ``suppress_below`` reads ``<N`` in its cell, as in the CSV (DEPARTMENTS.md: "Any
count of persons under 5 is shown as `<5`"): a text cell, right-aligned like the numbers around it; the
other counts of the column stay numbers.

Example::

    write_workbook(io.BytesIO(), table, report_policy, WorkbookMeta("civil_affairs", "2026-11-21", run_id, 1))
"""

from __future__ import annotations

import datetime as dt
import decimal
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import xlsxwriter

from islandbridge.config import LOCAL_TZ
from islandbridge.delivery.policy import ColumnRule, ReportPolicy

DEFINITION_SHEET = "说明"
MAX_WIDTH = 60
ROW_HEIGHT = 15  # points: one line of the default 11-point font
DATE_FORMAT, DATETIME_FORMAT, MONTH_FORMAT = "yyyy-mm-dd", "yyyy-mm-dd hh:mm", "yyyy-mm"


@dataclass(frozen=True)
class WorkbookMeta:
    """What the definition sheet says about the file: who it is for and which run made it."""

    department: str
    day: str  # YYYY-MM-DD in Asia/Shanghai, the day the lists are for
    run_id: str
    policy_version: int | str
    notes: tuple[str, ...] = ()  # what a reader must know first, e.g. that M's roster has not arrived


def write_workbook(out: BinaryIO, table: pa.Table, report: ReportPolicy, meta: WorkbookMeta) -> None:
    """Write ``table`` (the report as exported, columns in policy order) to ``out`` as ``.xlsx``."""
    created = dt.datetime.fromisoformat(meta.day)  # fixed: equal input, equal bytes
    book = xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    try:
        book.set_properties(
            {
                "title": report.label or report.name,
                "created": created,
                "comments": f"{meta.department} {meta.day} {meta.run_id}",
            }
        )
        _report_sheet(book, table, report)
        _definition_sheet(book, table, report, meta)
    finally:
        book.close()


def sheet_name(report: ReportPolicy) -> str:
    """The report sheet's name: its label, within Excel's 31 characters and without ``[]:*?/\\``."""
    name = "".join(c for c in (report.label or report.name) if c not in "[]:*?/\\")
    return name[:31] or "report"


def _report_sheet(book: xlsxwriter.Workbook, table: pa.Table, report: ReportPolicy) -> None:
    sheet = book.add_worksheet(sheet_name(report))
    formats = _Formats(book)
    # A clerk reads the person first: the long pseudonymous person_ref goes last (CSV keeps policy order).
    rules = [r for r in report.columns if r.kind != "person_ref"] + [
        r for r in report.columns if r.kind == "person_ref"
    ]
    table = table.select([r.name for r in rules])
    headers = [r.header for r in rules]
    widths = [_width(h) for h in headers]
    kinds = [_kind(table.column(r.name).type, r) for r in rules]
    places = [_places(table.column(r.name).type) for r in rules]
    for c, header in enumerate(headers):
        sheet.write_string(0, c, header, formats.header)
    for i, row in enumerate(_rows(table), start=1):
        for c, (rule, kind, value) in enumerate(zip(rules, kinds, row, strict=True)):
            if rule.suppress_below and isinstance(value, str) and value.startswith("<"):
                sheet.write_string(i, c, value, formats.small_count)  # "<5", where the numbers stand
                continue
            written = _write(sheet, i, c, kind, rule.cell_label(value), formats, places[c])
            widths[c] = max(widths[c], written)
    for c, width in enumerate(widths):
        fmt = formats.text if c < len(kinds) and kinds[c] == "text" else None
        sheet.set_column(c, c, min(width + 2, MAX_WIDTH), fmt)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(table.num_rows, 1), len(headers) - 1)
    _print_whole_rows(sheet)
    sheet.repeat_rows(0)  # the header on every printed page


def _print_whole_rows(sheet: xlsxwriter.worksheet.Worksheet) -> None:
    """Printed landscape, every column on one page's width: a clerk's printout keeps each row whole."""
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)


def _definition_sheet(
    book: xlsxwriter.Workbook, table: pa.Table, report: ReportPolicy, meta: WorkbookMeta
) -> None:
    sheet = book.add_worksheet(DEFINITION_SHEET)
    formats = _Formats(book)
    facts = [
        ("报表 report", f"{report.label} ({report.name})" if report.label else report.name),
        ("定义 definition", report.definition or report.description),
        *(("注意 note", note) for note in meta.notes),
        *((("英文定义 in English", report.description),) if report.definition and report.description else ()),
        ("数据日期 as of", f"{meta.day}（上海时间，当日 0 点的情况 / as of 00:00 Asia/Shanghai）"),
        ("运行编号 run id", meta.run_id),
        ("部门 department", meta.department),
        ("政策版本 policy version", str(meta.policy_version)),
        ("行数 rows", str(table.num_rows)),
    ]
    thresholds = [r.suppress_below for r in report.columns if r.suppress_below]
    if thresholds:
        n = min(thresholds)  # the report sheet's cells read <n
        facts.append(
            (
                "小数保护 small counts",
                f"少于 {n} 人（包括 0）的计数不显示具体数，写作 <{n} / counts under {n} (0 included) "
                f"show as <{n}",
            )
        )
    widths = (24, 60, 30, 50)  # the meaning (last) is the longest text of a column row
    for i, (key, value) in enumerate(facts):
        sheet.write_string(i, 0, key, formats.header)
        sheet.write_string(i, 1, value or "", formats.wrap)
        _fit_height(sheet, i, {1: value or ""}, widths)
    top = len(facts) + 1
    for c, head in enumerate(("列 column", "英文列名 name", "来源 source", "说明 meaning")):
        sheet.write_string(top, c, head, formats.header)
    for i, rule in enumerate(report.columns, start=top + 1):  # policy order, as in the CSV
        values = (rule.header, rule.name, rule.source, _meaning(rule))
        for c, value in enumerate(values):
            sheet.write_string(i, c, value or "", formats.wrap)
        _fit_height(sheet, i, {c: v or "" for c, v in enumerate(values)}, widths)
    for c, width in enumerate(widths):
        sheet.set_column(c, c, width)
    _print_whole_rows(sheet)


def _meaning(rule: ColumnRule) -> str:
    """The column's meaning; for a column of codes shown as labels, which code each label stands for."""
    if not rule.cell_labels:
        return rule.description
    codes = "，".join(f"{label} = {code}" for code, label in rule.cell_labels)
    return f"{rule.description}\n（CSV 和 Parquet 文件中写代码：{codes}。）"


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        self.text = book.add_format({"num_format": "@"})
        self.small_count = book.add_format({"num_format": "@", "align": "right"})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.date = book.add_format({"num_format": DATE_FORMAT})
        self.month = book.add_format({"num_format": MONTH_FORMAT})
        self.datetime = book.add_format({"num_format": DATETIME_FORMAT})
        self.integer = book.add_format({"num_format": "0"})
        self._book, self._numbers = book, {}

    def number(self, places: int):
        """The format of a number shown with ``places`` decimals (``0.0`` for one)."""
        if places not in self._numbers:
            self._numbers[places] = self._book.add_format({"num_format": "0." + "0" * places})
        return self._numbers[places]


def _places(arrow_type: pa.DataType) -> int:
    """The decimals a number column shows, as the CSV writes it: a decimal's own scale (``hours_silent``,
    DECIMAL(10, 1), "保留一位小数": ``0.0``; ``amount_yuan``, DECIMAL(12, 2): ``0.00``), two for a float."""
    return arrow_type.scale if pa.types.is_decimal(arrow_type) and arrow_type.scale > 0 else 2


def _kind(arrow_type: pa.DataType, rule: ColumnRule) -> str:
    if rule.cell_labels:  # a code, shown as its label
        return "text"
    if rule.suppress_below or pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_decimal(arrow_type):
        return "integer" if arrow_type.scale == 0 else "number"
    if pa.types.is_floating(arrow_type):
        return "number"
    if pa.types.is_timestamp(arrow_type):
        return "datetime"
    if pa.types.is_date(arrow_type):
        return "month" if rule.name.endswith("month") else "date"  # a month is kept as its first day
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    # a birth date stays text (YYYY-MM-DD, or YYYY-MM from a roster's 出生年月): as dates beside text, a
    # spreadsheet sorts and filters the two kinds apart; as text of one shape they sort by date
    return "text"


def _write(sheet, row: int, col: int, kind: str, value: object, formats: _Formats, places: int = 2) -> int:
    """Write one cell with its type (a number with ``places`` decimals); returns the width its text takes."""
    if value is None:
        return 0
    if kind in ("integer", "number") and isinstance(value, int | float | decimal.Decimal | str):
        number = float(value)
        sheet.write_number(row, col, number, formats.integer if kind == "integer" else formats.number(places))
        return _width(str(value))
    if kind == "datetime" and isinstance(value, dt.datetime):
        local = value.astimezone(LOCAL_TZ).replace(tzinfo=None) if value.tzinfo else value
        sheet.write_datetime(row, col, local, formats.datetime)
        return len(DATETIME_FORMAT)
    if kind in ("date", "month") and isinstance(value, dt.date):
        month = kind == "month"
        sheet.write_datetime(
            row, col, dt.datetime.combine(value, dt.time()), formats.month if month else formats.date
        )
        return len(MONTH_FORMAT if month else DATE_FORMAT)
    if kind == "boolean":
        value = "是" if value else "否"
    text = str(value)
    sheet.write_string(row, col, text, formats.text)
    return _width(text)


def _rows(table: pa.Table) -> Iterable[tuple]:
    for batch in table.to_batches():
        yield from zip(*(c.to_pylist() for c in batch.columns), strict=True)


def _fit_height(sheet: xlsxwriter.worksheet.Worksheet, row: int, texts: dict[int, str], widths) -> None:
    """A row tall enough for its wrapped text: spreadsheets do not grow a row written by XlsxWriter, and
    LibreOffice printed a two-line definition over the next row."""
    lines = max((_wrapped_lines(text, widths[c] - 2) for c, text in texts.items()), default=1)
    if lines > 1:
        sheet.set_row(row, ROW_HEIGHT * lines)


def _wrapped_lines(text: str, width: int) -> int:
    """Lines ``text`` takes in a column ``width`` characters wide: each of its own lines wraps apart."""
    return sum(max(1, -(-_width(line) // width)) for line in text.split("\n"))


def _width(text: str) -> int:
    """Display width in Excel's character units: a CJK character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
