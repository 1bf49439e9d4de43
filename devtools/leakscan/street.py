"""Needles from a simulated street: every identifier its truth and its source files hold, as written."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from islandbridge.devtools.leakscan.needles import (
    _DIGIT_RUN,
    _FOLD,
    _HAN,
    _NAME_SEPARATORS,
    Needles,
    _mobiles,
)

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
