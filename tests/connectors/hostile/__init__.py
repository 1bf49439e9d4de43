"""Roster files to test the civil connector with: well-formed builders and a corpus of hostile files.

Everything is built small, from code, into a test's own folder (nothing is committed but this module).
The people in them are invented. Each ``Hostile`` entry names the file it writes, the options the
connector runs with, where its reason must appear (``file``: one quarantined ``file:<name>`` record;
``row``: per-row quarantine beside landed rows; ``all``: every row quarantined, none landed;
``ignored``: the state's ``ignored`` list) and a fragment the reason must contain. Whatever the case,
the file's outcome is recorded with its reason in the run's accounting of files.
"""

from __future__ import annotations

import codecs
import io
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl

STREET = "511403001"
DIBAO_HEADER = [
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
]
SENIOR_HEADER = [
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
]
DIBAO_MONEY = DIBAO_HEADER.index("月保障金(元)")
SENIOR_MONEY = SENIOR_HEADER.index("发放金额")


def dibao_row(i: int, month: str = "202611", amount: Any = None, sfzh: Any = None, name: str | None = None):
    return [
        i,
        name or f"测试{i}",
        sfzh or f"5114031980010{i:04d}1",
        3,
        2,
        "13800000000",
        f"锦江苑{i}栋1单元101室",
        "A类",
        1000 + i if amount is None else amount,
        month,
        "凤鸣社区",
    ]


def senior_row(i: int, amount: Any = "100", sfzh: str | None = None, name: str | None = None):
    return [
        str(i),
        name or f"长者{i}",
        "男",
        sfzh or f"5114031940010{i:04d}2",
        "1940.01",
        "86",
        "100",
        amount,
        f"62170000000000{i:05d}",
        "凤鸣社区",
    ]


def money_total(rows: Sequence[Sequence[Any]], index: int) -> Decimal:
    return sum(
        (Decimal(repr(r[index]) if isinstance(r[index], float) else str(r[index])) for r in rows), Decimal(0)
    )


def dibao_xlsx(
    rows: Sequence[Sequence[Any]],
    total: Any = "auto",
    header: Sequence[str] = DIBAO_HEADER,
    month: str = "202611",
) -> bytes:
    """A 低保 workbook as the bureau makes it: title, maker line, header, rows, 合计 (None: no totals)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "花名册"
    sheet.append([f"彭山区凤鸣街道{month[:4]}年{int(month[4:])}月城乡低保发放花名册"])
    sheet.append(
        ["制表单位：凤鸣街道民政办", None, None, None, None, None, None, None, "制表日期：2026-11-05"]
    )
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    if total is not None:
        amount = money_total(rows, DIBAO_MONEY) if total == "auto" else total
        sheet.append(
            ["合计", *[None] * (DIBAO_MONEY - 1), float(amount) if "." in str(amount) else int(amount)]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def senior_csv(
    rows: Sequence[Sequence[Any]], total: Any = "auto", encoding: str = "gb18030", bom: bytes = b""
) -> bytes:
    """A 高龄补贴 CSV as the bureau makes it: GB18030, CRLF, header, rows, 合计."""
    lines = [",".join(SENIOR_HEADER)] + [",".join(str(c) for c in row) for row in rows]
    if total is not None:
        amount = money_total(rows, SENIOR_MONEY) if total == "auto" else total
        lines.append(",".join(["合计", *[""] * (SENIOR_MONEY - 1), str(amount), "", ""]))
    return bom + ("\r\n".join(lines) + "\r\n").encode(encoding)


def roster_name(
    programme: str = "低保", month: str = "202611", correction: str = "", ext: str = "xlsx"
) -> str:
    return f"{STREET}_{month}_{programme}{correction}.{ext}"


# --------------------------------------------------------------------------- the hostile corpus


@dataclass(frozen=True)
class Hostile:
    kind: str
    name: str
    build: Callable[[Path, str], None]
    reason: str
    where: str = "file"
    options: dict[str, Any] = field(default_factory=dict)


def _write(data: bytes) -> Callable[[Path, str], None]:
    return lambda folder, name: (folder / name).write_bytes(data)


def _zip_bomb(folder: Path, name: str) -> None:
    """8 MB of zeros deflate to about 8 KB: a ratio no spreadsheet has."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (8 << 20))
    (folder / name).write_bytes(out.getvalue())


def _xml_bomb(folder: Path, name: str) -> None:
    """A real workbook whose sheet XML declares nested entities (billion laughs)."""
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row></sheetData></worksheet>'
    )
    source = zipfile.ZipFile(io.BytesIO(dibao_xlsx([dibao_row(1)])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in source.namelist():
            archive.writestr(entry, laughs if entry == "xl/worksheets/sheet1.xml" else source.read(entry))
    (folder / name).write_bytes(out.getvalue())


def _symlink_outside(folder: Path, name: str) -> None:
    outside = folder.parent / "outside-secret.xlsx"
    outside.write_bytes(dibao_xlsx([dibao_row(1)]))
    (folder / name).symlink_to(outside)


def _fifo(folder: Path, name: str) -> None:
    os.mkfifo(folder / name)


def _directory(folder: Path, name: str) -> None:
    (folder / name).mkdir()


def _ragged_csv() -> bytes:
    rows = [senior_row(1), senior_row(2) + ["多出来的"], senior_row(3)[:-1], senior_row(4)]
    return senior_csv(rows)


def _ragged_xlsx() -> bytes:
    return dibao_xlsx([dibao_row(1), dibao_row(2) + ["多出来的"], dibao_row(3)])


def _unterminated_quote() -> bytes:
    text = ",".join(SENIOR_HEADER) + '\r\n1,"长者1,男,511403194001010012,1940.01,86,100,100,6217,凤鸣社区\r\n'
    return text.encode("gb18030")


def _sheets(*states: str) -> Callable[[Path, str], None]:
    """A workbook with one roster sheet per state ('visible' or 'hidden')."""

    def build(folder: Path, name: str) -> None:
        book = openpyxl.Workbook()
        book.remove(book.active)
        roster = list(
            openpyxl.load_workbook(io.BytesIO(_VALID), read_only=True).active.iter_rows(values_only=True)
        )
        for n, state in enumerate(states):
            sheet = book.create_sheet(f"表{n + 1}")
            for cells in roster:
                sheet.append(cells)
            if state != "visible" and "visible" in states:
                sheet.sheet_state = state
        out = io.BytesIO()
        book.save(out)
        data = out.getvalue()
        if "visible" not in states:  # openpyxl will not save such a book: hide the sheets in the XML
            data = _rezip(
                data,
                "xl/workbook.xml",
                lambda xml: xml.replace(b'state="visible" r:id', b'state="hidden" r:id'),
            )
        (folder / name).write_bytes(data)

    return build


def _rezip(data: bytes, entry: str, edit: Callable[[bytes], bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.namelist():
            body = source.read(item)
            archive.writestr(item, edit(body) if item == entry else body)
    return out.getvalue()


def _subtotal_mid_file() -> bytes:
    rows = [senior_row(i) for i in range(1, 7)]
    top = senior_csv(rows[:3]).decode("gb18030")
    rest = "".join(",".join(r) + "\r\n" for r in rows[3:])
    return (top + rest).encode("gb18030")


_BIG_CSV = senior_csv([senior_row(i) for i in range(1, 400)])
_VALID = dibao_xlsx([dibao_row(1), dibao_row(2)])
_BIFF = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512  # the OLE2 header of an Excel 97-2003 file

CORPUS: tuple[Hostile, ...] = (
    Hostile("truncated_xlsx", roster_name(), _write(_VALID[: len(_VALID) // 2]), "not a valid .xlsx"),
    Hostile("not_a_zip", roster_name(), _write(b"%PDF-1.4\n" + b"\0" * 512), "not a zip"),
    Hostile("biff_named_xlsx", roster_name(), _write(_BIFF), "Excel 97-2003 workbook"),
    Hostile("biff_xls", roster_name(ext="xls"), _write(_BIFF), "save it as .xlsx"),
    Hostile(
        "encrypted_xlsx",
        roster_name(),
        _write(_BIFF + "EncryptedPackage".encode("utf-16-le")),  # the stream an encrypted .xlsx holds
        "password-protected: ask for it without a password",
    ),
    Hostile("text_named_xls", roster_name(ext="XLS"), _write(b"a,b\r\n"), "save it as .xlsx"),
    Hostile("zip_bomb", roster_name(), _zip_bomb, "zip bomb"),
    Hostile("xml_bomb", roster_name(), _xml_bomb, "XML bomb"),
    Hostile(
        "ragged_csv",
        roster_name("高龄补贴", ext="csv"),
        _write(_ragged_csv()),
        "fields; the header has 10",
        where="row",
    ),
    Hostile("ragged_xlsx", roster_name(), _write(_ragged_xlsx()), "beyond the header", where="row"),
    Hostile(
        "unterminated_quote",
        roster_name("高龄补贴", ext="csv"),
        _write(_unterminated_quote()),
        "malformed CSV",
    ),
    Hostile(
        "nul_bytes",
        roster_name("高龄补贴", ext="csv"),
        _write(senior_csv([senior_row(1)], encoding="utf-16")),
        "NUL bytes",
    ),
    Hostile(
        "gbk_with_utf8_bom",
        roster_name("高龄补贴", ext="csv"),
        _write(senior_csv([senior_row(1)], encoding="gbk", bom=codecs.BOM_UTF8)),
        "byte-order mark",
    ),
    Hostile("dotdot_name", "..\\" + roster_name(), _write(_VALID), "path separator", where="ignored"),
    Hostile("bad_name", "低保名单（最终版）.xlsx", _write(_VALID), "not a roster file name", where="ignored"),
    Hostile("symlink_outside", roster_name(), _symlink_outside, "symbolic link"),
    Hostile(
        "too_large",
        roster_name("高龄补贴", ext="csv"),
        _write(_BIG_CSV),
        "max_file_mb",
        options={"max_file_mb": 0.01},
    ),
    Hostile(
        "too_many_rows",
        roster_name("高龄补贴", ext="csv"),
        _write(senior_csv([senior_row(i) for i in range(1, 6)])),
        "max_rows",
        options={"max_rows": 3},
    ),
    Hostile("fifo", roster_name("高龄补贴", ext="csv"), _fifo, "not a regular file"),
    Hostile("directory", roster_name(), _directory, "not a regular file"),
    Hostile(
        "no_header", roster_name(), _write(dibao_xlsx([dibao_row(1)], header=["编号"] * 11)), "no header row"
    ),
    Hostile("two_visible_roster_sheets", roster_name(), _sheets("visible", "visible"), "are all visible"),
    Hostile("every_sheet_hidden", roster_name(), _sheets("hidden"), "no visible worksheet"),
    Hostile(
        "subtotal_mid_file",
        roster_name("高龄补贴", ext="csv"),
        _write(_subtotal_mid_file()),
        "below the 合计 row",
        where="all",
    ),
    Hostile("empty_roster", roster_name(), _write(dibao_xlsx([], total=0)), "no data rows"),
    Hostile(
        "other_street",
        "511403002_202611_低保.xlsx",
        _write(_VALID),
        "a roster of street 511403002",
        where="ignored",
        options={"street_code": STREET},
    ),
    Hostile(
        "unexpected_column",
        roster_name(),
        _write(dibao_xlsx([dibao_row(1)], header=[*DIBAO_HEADER[:-1], "备注"])),
        "missing column 所属社区; 1 column not in the SPEC: 备注",
        where="all",
    ),
)
