"""Hostile roster files for the civil-affairs connector (``civil_files``), as data.

Every case writes its files into an empty roster folder and states the outcome of one extraction:
refused files and quarantined rows with their reason, or rows accepted exactly as the file holds them
(the connector never repairs: a field's Unicode tricks land as written and are judged later, by the
normalisers, which ``land`` checks where it names an ID kind). The 23 files of the connector tests'
corpus (``tests.connectors.hostile.CORPUS``) are folded in, asserted the same way.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import socket
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl

from tests.connectors.hostile import (
    CORPUS,
    DIBAO_HEADER,
    SENIOR_HEADER,
    SENIOR_MONEY,
    _rezip,
    dibao_row,
    dibao_xlsx,
    money_total,
    roster_name,
    senior_row,
)
from tests.hostile.corpus import Expect, accepted, quarantined
from tests.hostile.payloads import INJECTIONS, UNICODE_TRICKS

Build = Callable[[Path], None]
XLSX, CSV = roster_name(), roster_name("高龄补贴", ext="csv")


@dataclass(frozen=True)
class FileCase:
    id: str
    build: Build
    expect: Expect
    options: dict[str, Any] = field(default_factory=dict)
    first: Build | None = None  # files of an earlier run, extracted first (the case's run is the second)
    landed_values: dict[str, Any] = field(default_factory=dict)  # column -> exact landed text of row 1
    id_kind: str | None = None  # what normalize_id(spreadsheet=True) makes of the landed ID


def put(name: str, data: bytes) -> Build:
    return lambda folder: (folder / name).write_bytes(data)


def senior_csv_rows(rows: Sequence[Sequence[Any]], encoding: str = "gb18030", total: Any = "auto") -> bytes:
    """A 高龄补贴 CSV written by the csv module (so quotes, commas and line breaks in cells stay cells)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SENIOR_HEADER)
    writer.writerows(rows)
    if total is not None:
        amount = money_total(rows, SENIOR_MONEY) if total == "auto" else total
        writer.writerow(["合计", *[""] * (SENIOR_MONEY - 1), str(amount), "", ""])
    return out.getvalue().encode(encoding)


def text_cells(data: bytes) -> bytes:
    """The workbook with every cell openpyxl took for a formula (text starting with ``=``) made a text cell,
    as Excel stores a typed ``'=cmd…`` or an import of such text: the value is data, not a formula."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    for row in book.active.iter_rows():
        for cell in row:
            if cell.data_type == "f":
                cell.data_type = "s"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_cell(row: list[Any], header: Sequence[str], column: str, value: Any) -> list[Any]:
    row = list(row)
    row[header.index(column)] = value
    return row


# ------------------------------------------------------------------------------- folded connector corpus


def _folded() -> list[FileCase]:
    cases = []
    for h in CORPUS:
        landed = None if h.where == "row" else 0
        cases.append(
            FileCase(
                f"corpus_{h.kind}",
                lambda folder, h=h: h.build(folder, h.name),
                quarantined(_literal(h.reason), landed=landed),
                h.options,
            )
        )
    return cases


def _literal(text: str) -> str:
    import re

    return re.escape(text)


# ------------------------------------------------------------------------------- fields: tricks land as is


def _field_cases() -> list[FileCase]:
    cases = []
    for kind, text in (*UNICODE_TRICKS, *INJECTIONS):
        row = with_cell(dibao_row(1), DIBAO_HEADER, "户主姓名", text)
        cases.append(
            FileCase(
                f"xlsx_name_{kind}",
                put(XLSX, text_cells(dibao_xlsx([row, dibao_row(2)]))),
                accepted(landed=2),
                landed_values={"户主姓名": text},
            )
        )
        row = with_cell(senior_row(1), SENIOR_HEADER, "所属社区", text)
        cases.append(
            FileCase(
                f"csv_community_{kind}",
                put(CSV, senior_csv_rows([row, senior_row(2)])),
                accepted(landed=2),
                landed_values={"所属社区": text},
            )
        )
    formula = with_cell(dibao_row(1), DIBAO_HEADER, "户主姓名", "=cmd|' /C calc'!A0")
    cases.append(
        FileCase(
            "xlsx_name_real_formula_cell_without_cached_value",
            put(XLSX, dibao_xlsx([formula, dibao_row(2)])),
            accepted(landed=2),
            landed_values={"户主姓名": None},
        )
    )
    for kind, text in (("csv_newline_in_cell", "凤鸣\r\n社区"), ("csv_quote_comma", '凤鸣,"社区"')):
        row = with_cell(senior_row(1), SENIOR_HEADER, "所属社区", text)
        cases.append(
            FileCase(
                kind,
                put(CSV, senior_csv_rows([row])),
                accepted(landed=1),
                landed_values={"所属社区": text},
            )
        )
    return cases


# ------------------------------------------------------------------------------- ID numbers


_IDS: tuple[tuple[str, Any, str], ...] = (
    ("int_cell_check_digit_ok", 360102200210121000, "excel_damaged"),
    ("int_cell_other", 511403198001010011, "excel_damaged"),
    ("float_cell", 5.11403198001012e17, "excel_damaged"),
    ("scientific_text", "5.11403E+17", "excel_damaged"),
    ("decimal_text", "511403198001010011.0", "excel_damaged"),
    ("trailing_000_text", "360102200210121000", "excel_damaged"),
    ("apostrophe", "'11010119900307002X", "full"),
    ("lower_x_spaces", " 110101 19900307 002x ", "full"),
    ("fullwidth_digits", "１１０１０１１９９００３０７００２Ｘ", "full"),
    ("zero_width_inside", "110101\u200b19900307002X", "full"),
    ("bidi_inside", "110101\u202e19900307002X", "garbage"),
    ("arabic_indic", "١١٠١٠١١٩٩٠٠٣٠٧٠٠٢X", "garbage"),
    ("bad_check_digit", "110101199003070021", "invalid_checksum"),
    ("seventeen_digits", "11010119900307002", "garbage"),
    ("nineteen_digits", "1101011990030700211", "garbage"),
    ("legacy_15", "110101900307002", "legacy15_upgraded"),
    ("masked", "110101********002X", "masked"),
    ("placeholder", "无", "missing"),
    ("birth_9999", "110101999912310010", "invalid_checksum"),
    ("sql_injection", "1' OR '1'='1", "garbage"),
)


def _id_cases() -> list[FileCase]:
    from islandbridge.transforms.normalize import normalize_id

    cases = []
    for kind, value, id_kind in _IDS:
        if id_kind == "invalid_checksum" and kind == "birth_9999" and normalize_id(value).kind != id_kind:
            id_kind = normalize_id(value).kind
        row = with_cell(dibao_row(1), DIBAO_HEADER, "身份证号码", value)
        cases.append(
            FileCase(f"id_xlsx_{kind}", put(XLSX, dibao_xlsx([row])), accepted(landed=1), id_kind=id_kind)
        )
    for kind, value, id_kind in _IDS:
        if isinstance(value, int | float):
            continue
        row = with_cell(senior_row(1), SENIOR_HEADER, "身份证号", value)
        cases.append(
            FileCase(f"id_csv_{kind}", put(CSV, senior_csv_rows([row])), accepted(landed=1), id_kind=id_kind)
        )
    return cases


# ------------------------------------------------------------------------------- encodings


def _encoded(encoding: str, bom: bytes = b"") -> bytes:
    return bom + senior_csv_rows([senior_row(1), senior_row(2)], encoding="utf-8").decode().encode(encoding)


def _encoding_cases() -> list[FileCase]:
    ok = [("utf8", _encoded("utf-8")), ("utf8_bom", _encoded("utf-8", codecs.BOM_UTF8))]
    ok += [("gb18030", _encoded("gb18030")), ("gbk", _encoded("gbk"))]
    cases = [FileCase(f"encoding_{k}", put(CSV, d), accepted(landed=2)) for k, d in ok]
    refused = [
        ("utf16_bom", _encoded("utf-16"), "NUL bytes"),
        ("utf16le_no_bom", _encoded("utf-16-le"), "NUL bytes"),
        ("utf32", _encoded("utf-32"), "NUL bytes"),
        ("gb18030_with_utf8_bom", _encoded("gb18030", codecs.BOM_UTF8), "byte-order mark"),
        ("random_bytes", bytes(range(128, 256)) * 40, "neither UTF-8|no header|malformed|not valid"),
        ("overlong_utf8", b"\xc0\xaf\xc0\xae" * 50, "neither UTF-8|no header|not valid"),
        ("empty_file", b"", "no header|neither"),
        ("only_bom", codecs.BOM_UTF8, "no header"),
        ("only_header", ",".join(SENIOR_HEADER).encode("gb18030"), "no data rows|no 合计"),
        ("html_page", b"<html><body>404</body></html>", "no header"),
        ("xlsx_bytes_as_csv", dibao_xlsx([dibao_row(1)]), "NUL bytes"),
        ("pdf_as_csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "no header|neither|not valid"),
    ]
    cases += [FileCase(f"encoding_{k}", put(CSV, d), quarantined(p)) for k, d, p in refused]
    return cases


# ------------------------------------------------------------------------------- truncation and totals


_GOOD_XLSX = dibao_xlsx([dibao_row(i) for i in range(1, 30)])
_GOOD_CSV = senior_csv_rows([senior_row(i) for i in range(1, 30)])


def _truncation_cases() -> list[FileCase]:
    cases = [
        FileCase(
            f"truncated_xlsx_{pct}pct",
            put(XLSX, _GOOD_XLSX[: len(_GOOD_XLSX) * pct // 100]),
            quarantined("not a valid .xlsx|cannot read the workbook"),
        )
        for pct in (1, 10, 25, 50, 75, 90, 99)
    ]
    lines = _GOOD_CSV.split(b"\r\n")
    cases += [
        FileCase(
            f"truncated_csv_{n}_lines",
            put(CSV, b"\r\n".join(lines[:n])),
            quarantined("no 合计 totals row|no data rows"),
        )
        for n in (1, 2, 10, 29)
    ]
    cut = _GOOD_CSV[: _GOOD_CSV.index(b"\r\n", len(_GOOD_CSV) // 2) - 5]
    cases.append(
        FileCase(
            "truncated_csv_mid_row", put(CSV, cut), quarantined("fields; the header has|合计|neither UTF-8")
        )
    )
    return cases


def _totals_cases() -> list[FileCase]:
    rows = [dibao_row(i) for i in range(1, 5)]
    money = DIBAO_HEADER.index("月保障金(元)")
    right = float(money_total(rows, money))

    def total(marker: Any, amount: Any) -> list[Any]:
        cells: list[Any] = [None] * len(DIBAO_HEADER)
        cells[0], cells[money] = marker, amount
        return cells

    xlsx = [
        ("total_as_zongji", [*rows, total("总计", right)], accepted(landed=4)),
        ("total_with_spaces", [*rows, total("合 计", right)], accepted(landed=4)),
        ("total_fullwidth_colon", [*rows, total("合计：", right)], quarantined("合计")),
        (
            "subtotal_xiaoji_row",
            [*rows[:2], total("小计", 2003), *rows[2:], total("合计", right)],
            quarantined("合计 row states"),
        ),
        ("total_off_by_a_fen", [*rows, total("合计", right + 0.01)], quarantined("合计 row states")),
        ("total_missing_amount", [*rows, total("合计", None)], quarantined("合计 row has no")),
        ("total_is_text", [*rows, total("合计", "四千零一十元")], quarantined("not a number")),
        (
            "total_is_formula_without_cached_value",
            [*rows, total("合计", "=SUM(I4:I7)")],
            quarantined("合计 row has no"),
        ),
        ("total_nan", [*rows, total("合计", "NaN")], quarantined("not a finite number")),
        ("total_infinity", [*rows, total("合计", "Infinity")], quarantined("not a finite number")),
        ("total_bool", [*rows, total("合计", True)], quarantined("true/false|not a number|合计")),
        ("two_totals", [*rows, total("合计", right), total("合计", right)], accepted(landed=4)),
        ("total_then_data", [*rows[:2], total("合计", 2003), *rows[2:]], quarantined("below the 合计 row")),
    ]
    return [FileCase(kind, put(XLSX, dibao_xlsx(cells, total=None)), expect) for kind, cells, expect in xlsx]


# ------------------------------------------------------------------------------- money and dates


def _money_cases() -> list[FileCase]:
    values: list[tuple[str, Any, Expect]] = [
        ("huge_float", 1e308, accepted(landed=2)),
        ("negative", -1000, accepted(landed=2)),
        ("negative_zero", -0.0, accepted(landed=2)),
        ("tiny", 1e-7, accepted(landed=2)),
        ("binary_fraction", 0.1 + 0.2, accepted(landed=2)),
        # beyond a double's precision: the 合计 Excel stores cannot equal the exact sum, so it is refused
        ("big_int", 10**20, quarantined("合计 row states")),
        ("long_decimal_text", "123456789012345678901234567890.12", quarantined("合计 row states")),
        ("thousands_separator", "1,000.00", accepted(landed=2)),
        ("fullwidth_digits", "１００", accepted(landed=2)),
        ("nan_text", "NaN", quarantined("not a finite number")),
        ("inf_text", "inf", quarantined("not a finite number")),
        ("words", "一千元", quarantined("not a number")),
        ("bool_cell", True, quarantined("true/false")),
        ("date_cell", dt.datetime(2026, 11, 1), quarantined("not a number")),
        ("formula_text", "=1+1", quarantined("not a number")),
    ]
    cases = []
    for kind, value, expect in values:
        rows = [dibao_row(1, amount=value), dibao_row(2)]
        stated = 1002 if expect.kind != "accepted" else "auto"
        if expect.kind == "accepted" or "合计 row states" in expect.pattern:
            data = dibao_xlsx(rows) if not isinstance(value, str) else _text_money(rows)
        else:
            data = dibao_xlsx(rows, total=stated)
        cases.append(FileCase(f"money_{kind}", put(XLSX, text_cells(data)), expect))
    return cases


def _text_money(rows: list[list[Any]]) -> bytes:
    from islandbridge.connectors.roster_files import to_decimal

    money = DIBAO_HEADER.index("月保障金(元)")
    amount = sum(to_decimal(r[money]) for r in rows)
    return dibao_xlsx(rows, total=str(amount) if "." in str(amount) else int(amount))


def _date_cases() -> list[FileCase]:
    values = [
        ("month_999912", "999912"),
        ("month_000000", "000000"),
        ("month_empty", None),
        ("month_datetime_9999", dt.datetime(9999, 12, 31, 23, 59, 59)),
        ("month_datetime_1900", dt.datetime(1900, 1, 1)),
        ("month_date_cell", dt.date(2026, 11, 1)),
    ]
    return [
        FileCase(
            f"date_{kind}",
            put(XLSX, dibao_xlsx([with_cell(dibao_row(1), DIBAO_HEADER, "发放年月", v)])),
            accepted(landed=1),
        )
        for kind, v in values
    ] + [
        FileCase(
            "date_serial_beyond_9999",
            put(XLSX, _rezip(_dated(), "xl/worksheets/sheet1.xml", _serial(2958470))),
            accepted(landed=1),  # openpyxl reads a date serial past 9999-12-31 as Excel shows it
            landed_values={"发放年月": "#VALUE!"},
        ),
        FileCase(
            "date_serial_negative",
            put(XLSX, _rezip(_dated(), "xl/worksheets/sheet1.xml", _serial(-5))),
            accepted(landed=1),
            landed_values={"发放年月": "1899-12-25 00:00:00"},
        ),
    ]


def _dated() -> bytes:
    return dibao_xlsx([with_cell(dibao_row(1), DIBAO_HEADER, "发放年月", dt.date(2026, 11, 1))])


def _serial(number: int) -> Callable[[bytes], bytes]:
    """Give the 发放年月 cell of row 4 (a date cell) the serial ``number``."""
    return lambda xml: xml.replace(
        b'<c r="J4" s="1" t="n"><v>46327</v>', b'<c r="J4" s="1" t="n"><v>%d</v>' % number
    )


# ------------------------------------------------------------------------------- names (OWASP upload list)


_VALID = dibao_xlsx([dibao_row(1), dibao_row(2)])


def _name_cases() -> list[FileCase]:
    ignored = [
        ("double_extension", XLSX + ".exe"),
        ("exe_then_xlsx", "511403001_202611_低保.exe.xlsx"),
        ("macro_extension", XLSX.replace(".xlsx", ".xlsm")),
        ("trailing_space", XLSX + " "),
        ("trailing_dot", XLSX + "."),
        ("leading_dash", "-" + XLSX),
        ("excel_owner_file", "~$" + XLSX),
        ("lock_file", ".~lock." + XLSX + "#"),
        ("url_encoded_traversal", "%2e%2e%2f" + XLSX),
        ("newline_in_name", XLSX.replace("_低保", "\n_低保")),
        ("tab_in_name", XLSX.replace("_低保", "_低保\t")),
        ("bidi_in_name", "511403001_202611_低保\u202e.xlsx"),
        ("zero_width_in_name", "511403001_202611_低\u200b保.xlsx"),
        ("fullwidth_street", "５１１４０３００１_202611_低保.xlsx"),
        ("fullwidth_year", "511403001_２０２６11_低保.xlsx"),
        ("arabic_indic_year", "511403001_٢٠٢٦11_低保.xlsx"),
        ("month_13", "511403001_202613_低保.xlsx"),
        ("month_00", "511403001_202600_低保.xlsx"),
        ("year_0000", "511403001_000011_低保.xlsx"),
        ("year_9999", "511403001_999912_低保.xlsx"),
        ("correction_0", "511403001_202611_低保_更正0.xlsx"),
        ("correction_100", "511403001_202611_低保_更正100.xlsx"),
        ("long_name", "511403001_202611_低保_" + "a" * 200 + ".xlsx"),
        ("unknown_programme", "511403001_202611_残疾.xlsx"),
        ("programme_suffix", "511403001_202611_低保們.xlsx"),
    ]
    biff = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512  # an Excel 97-2003 (OLE2) file's first bytes
    return [
        FileCase(f"name_{k}", put(n, _VALID), quarantined("not a roster file name|control character"))
        for k, n in ignored
    ] + [
        # the extension in any case, and an .xls that is a 2007+ workbook, are rosters
        FileCase("name_upper_extension", put(XLSX.replace(".xlsx", ".XLSX"), _VALID), accepted(landed=2)),
        FileCase(
            "name_old_excel_holding_xlsx", put(XLSX.replace(".xlsx", ".xls"), _VALID), accepted(landed=2)
        ),
        # a real Excel 97-2003 file cannot be read: refused with what to do, never ignored
        FileCase("name_old_excel", put(XLSX.replace(".xlsx", ".xls"), biff), quarantined("save it as .xlsx")),
    ]


# ------------------------------------------------------------------------------- special files and archives


def _socket(folder: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / XLSX))
    sock.close()


def _symlink_to(target: str) -> Build:
    return lambda folder: (folder / XLSX).symlink_to(target)


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return out.getvalue()


def _entries(data: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {n: archive.read(n) for n in archive.namelist()}


def _xxe() -> bytes:
    evil = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>&x;</t></is></c></row></sheetData></worksheet>'
    )
    return _rezip(_VALID, "xl/worksheets/sheet1.xml", lambda _: evil.encode())


def _xxe_shared_strings() -> bytes:
    def edit(xml: bytes) -> bytes:
        return (
            b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
            + xml.split(b"?>", 1)[1]
        )

    return (
        _rezip(_VALID, "xl/sharedStrings.xml", edit) if "xl/sharedStrings.xml" in _entries(_VALID) else _xxe()
    )


def _encrypted_entry() -> bytes:
    data = bytearray(_VALID)
    # Set the "encrypted" flag on every local and central header: readers must refuse, not guess.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            data[at + offset] |= 0x01
            start = at + 4
    return bytes(data)


def _crc_lie() -> bytes:
    entries = _entries(_VALID)
    data = bytearray(_zip(entries, zipfile.ZIP_STORED))
    at = data.find(b"<sheetData>")
    data[at + 1] = ord("S")  # the stored bytes change, the CRC in the headers does not
    return bytes(data)


def _special_cases() -> list[FileCase]:
    entries = _entries(_VALID)
    return [
        FileCase("socket_named_like_roster", _socket, quarantined("not a regular file|cannot open the file")),
        FileCase("symlink_to_etc_passwd", _symlink_to("/etc/passwd"), quarantined("symbolic link")),
        FileCase("symlink_to_dev_zero", _symlink_to("/dev/zero"), quarantined("symbolic link")),
        FileCase("dangling_symlink", _symlink_to("/nonexistent/x.xlsx"), quarantined("symbolic link")),
        FileCase("symlink_loop", _symlink_to(XLSX), quarantined("symbolic link")),
        FileCase("xxe_external_entity", put(XLSX, _xxe()), quarantined("DTD or entities")),
        FileCase("xxe_in_shared_strings", put(XLSX, _xxe_shared_strings()), quarantined("DTD or entities")),
        FileCase(
            "encrypted_zip_entries",
            put(XLSX, _encrypted_entry()),
            quarantined("cannot read the workbook|not a valid"),
        ),
        FileCase("crc_mismatch", put(XLSX, _crc_lie()), quarantined("cannot read the workbook")),
        FileCase(
            "zip_slip_entry_ignored",
            put(XLSX, _zip({**entries, "../../evil.sh": b"rm -rf /", "/etc/cron.d/x": b"* * * * * x"})),
            accepted(landed=2),
        ),
        FileCase(
            "too_many_zip_entries",
            put(XLSX, _zip({**entries, **{f"pad/{n}.txt": b"" for n in range(600)}})),
            quarantined("zip entries"),
        ),
        FileCase(
            "docx_renamed",
            put(XLSX, _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"})),
            quarantined("cannot read the workbook"),
        ),
        FileCase("empty_zip", put(XLSX, _zip({})), quarantined("cannot read the workbook|not a valid")),
        FileCase("zero_bytes_xlsx", put(XLSX, b""), quarantined("not a valid .xlsx")),
        FileCase(
            "csv_text_as_xlsx", put(XLSX, senior_csv_rows([senior_row(1)])), quarantined("not a valid .xlsx")
        ),
        FileCase(
            "forged_dimension",
            put(
                XLSX,
                _rezip(
                    _VALID,
                    "xl/worksheets/sheet1.xml",
                    lambda x: x.replace(b'<dimension ref="A1:K6"', b'<dimension ref="A1:XFD1048576"'),
                ),
            ),
            accepted(landed=2),
        ),
        FileCase(
            "huge_integer_cell",
            put(XLSX, _rezip(_VALID, "xl/worksheets/sheet1.xml", _money_digits(5000))),
            quarantined("cannot read the workbook|not a number|合计"),
        ),
        FileCase(
            "stored_not_deflated",
            put(XLSX, _zip(entries, zipfile.ZIP_STORED)),
            accepted(landed=2),
        ),
    ]


def _money_digits(n: int) -> Callable[[bytes], bytes]:
    def edit(xml: bytes) -> bytes:
        import re

        return re.sub(rb'(<c r="I4"[^>]*>)<v>[^<]*</v>', rb"\1<v>" + b"9" * n + rb"</v>", xml, count=1)

    return edit


# ------------------------------------------------------------------------------- versions over two runs


def _version_cases() -> list[FileCase]:
    base = put(XLSX, dibao_xlsx([dibao_row(1), dibao_row(2)]))
    corr = roster_name(correction="_更正")
    blank_key = with_cell(dibao_row(1), DIBAO_HEADER, "序号", None)
    return [
        FileCase(
            "correction_all_quarantined",
            lambda f: (base(f), put(corr, dibao_xlsx([blank_key]))(f)),
            quarantined("does not become the month's roster"),
            first=base,
        ),
        FileCase(
            "same_file_again",
            base,
            Expect("accepted", landed=0),
            first=base,
        ),
        FileCase(
            "correction_with_repeated_key",
            lambda f: (base(f), put(corr, dibao_xlsx([dibao_row(1), dibao_row(1)]))(f)),
            quarantined("repeats row"),
            first=base,
        ),
        FileCase(
            "older_version_after_newer",
            lambda f: put(XLSX, dibao_xlsx([dibao_row(1)]))(f),
            Expect("accepted", landed=0),
            first=lambda f: put(corr, dibao_xlsx([dibao_row(1), dibao_row(2)]))(f),
        ),
    ]


def _key_cases() -> list[FileCase]:
    keys: list[tuple[str, Any, Expect]] = [
        ("serial_zero_width", "1\u200b", accepted(landed=2)),
        ("serial_fullwidth", "１", accepted(landed=2)),
        ("serial_formula", "=1+1", accepted(landed=2)),
        ("serial_traversal", "../../x", accepted(landed=2)),
        ("serial_colon", "1:2", accepted(landed=2)),
        ("serial_ideographic_space", "\u3000", quarantined("序号 is empty", landed=1)),
        ("serial_float_is_the_next_key", 2.0, quarantined("序号 2 repeats row 4", landed=1)),
    ]
    cases = []
    for kind, key, expect in keys:
        row = with_cell(dibao_row(1), DIBAO_HEADER, "序号", key)
        cases.append(FileCase(f"key_{kind}", put(XLSX, text_cells(dibao_xlsx([row, dibao_row(2)]))), expect))
    return cases


def civil_cases() -> list[FileCase]:
    return [
        *_folded(),
        *_field_cases(),
        *_id_cases(),
        *_encoding_cases(),
        *_truncation_cases(),
        *_totals_cases(),
        *_money_cases(),
        *_date_cases(),
        *_name_cases(),
        *_special_cases(),
        *_version_cases(),
        *_key_cases(),
    ]


CASES = civil_cases()
