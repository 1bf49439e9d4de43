"""The files of one exported report: CSV for spreadsheets' import, Parquet for programs, ``.xlsx`` for people.

- ``<report>.csv`` — UTF-8 with a BOM (so Excel and WPS read Chinese text right) and CRLF line ends.
  A cell of digits that a spreadsheet would turn into a number — an 18-digit ID number becomes
  ``5.11402194402204E+017`` and loses its last digits, a mobile number shows as ``1.38001E+10`` in a
  column of default width, a landline loses its leading 0 — is written in the text form ``="0571…"``,
  which Excel, WPS and LibreOffice open as that text (`spreadsheet_text`).
  Date-times are written as ``YYYY-MM-DD HH:MM:SS`` in Asia/Shanghai, which spreadsheets read as dates.
- ``<report>.parquet`` — the same cells as plain values and types (zstd, fixed writer options).
- ``<report>.xlsx`` — typed cells, Chinese headers and a definition sheet (`islandbridge.delivery.workbook`).

Every file is written owner-and-group only and flushed to disk; the manifest lists each with its rows,
bytes and SHA-256.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from islandbridge.delivery.policy import ReportPolicy
from islandbridge.delivery.workbook import WorkbookMeta, write_workbook

CSV_LINE_END = "\r\n"  # RFC 4180, and what Excel itself writes
# Fixed so that equal tables give equal bytes; pyarrow writes no timestamp into Parquet metadata.
PARQUET_OPTIONS: Mapping[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 1 << 20,
}
FORMATS = ("csv", "parquet", "xlsx")
# Digits a spreadsheet would read as a number and change: 12 or more (Excel keeps 15 significant digits
# and shows 12+ in E notation), or any with a leading zero (dropped). An ID ending in X is text already.
_NUMERIC_TEXT = re.compile(r"[0-9]{11,}|0[0-9]+")


def write_report_files(
    folder: Path, name: str, table: pa.Table, report: ReportPolicy, meta: WorkbookMeta
) -> list[dict[str, Any]]:
    """Write the report's three files into ``folder``; returns one manifest entry per file."""
    paths = [folder / f"{name}.{ext}" for ext in FORMATS]
    write_csv(table, paths[0])
    with open(paths[1], "wb", opener=private) as out:
        pq.write_table(table, out, **PARQUET_OPTIONS)
        out.flush()
        os.fsync(out.fileno())
    book = io.BytesIO()  # XlsxWriter would create the file with the process's umask; private() does not
    write_workbook(book, table, report, meta)
    with open(paths[2], "wb", opener=private) as out:
        out.write(book.getvalue())
        out.flush()
        os.fsync(out.fileno())
    return [
        {
            "report": name,
            "format": p.suffix[1:],
            "name": p.name,
            "rows": table.num_rows,
            "bytes": p.stat().st_size,
            "sha256": sha256(p),
        }
        for p in paths
    ]


def write_csv(table: pa.Table, path: Path) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="", opener=private) as out:
        writer = csv.writer(out, lineterminator=CSV_LINE_END)
        writer.writerow(table.column_names)
        for batch in table.to_batches():
            for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                writer.writerow([csv_text(v) for v in row])
        out.flush()
        os.fsync(out.fileno())


def csv_text(value: object) -> str:
    """One CSV cell as a spreadsheet should show it (module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")  # local time already; the Parquet keeps the zone
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return spreadsheet_text(str(value))  # text was neutralised already


def spreadsheet_text(text: str) -> str:
    """``="…"`` around digits a spreadsheet would turn into a number; other text unchanged.

    Only plain digits are wrapped, so the formula can hold nothing but that text (no injection).
    """
    return f'="{text}"' if _NUMERIC_TEXT.fullmatch(text) else text


def cell_value(text: str) -> str:
    """The value a spreadsheet shows for a CSV cell this module wrote (the inverse of `spreadsheet_text`)."""
    if text.startswith('="') and text.endswith('"') and _NUMERIC_TEXT.fullmatch(text[2:-1]):
        return text[2:-1]
    return text


def write_json(path: Path, body: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n", opener=private) as out:
        out.write(json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())


def private(path: str, flags: int) -> int:
    """Export files hold personal data: owner and group only (a stricter umask still applies)."""
    return os.open(path, flags, 0o640)


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
