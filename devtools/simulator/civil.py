"""System C, the civil-affairs rosters: monthly 低保 workbooks and 高龄补贴 CSV files under ``civil/``.

Two months are written, the roster month M (the as-of month) and the month before, as the bureau's
shared folder would hold them on the as-of date. M's 低保 workbook is followed by a ``_更正`` correction
that replaces it: a head who had left is removed, an Excel-damaged ID number is typed again, amounts
are revised. The truth names the rows of the correction, not of the replaced file.

Files are byte-identical for a seed: workbook properties carry a fixed time and the ZIP entries a fixed
date, instead of the moment they were written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from islandbridge.devtools.simulator import names, quirks
from islandbridge.devtools.simulator.common import Chooser, age_on, ensure_each, randint
from islandbridge.devtools.simulator.formats import excel_csv_text, excel_float, render_address
from islandbridge.devtools.simulator.population import Person, Street

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
# Monthly 低保 standard per covered person, in fen (1/100 yuan), by category.
DIBAO_STANDARD = {"A类": 72_000, "B类": 65_550, "C类": 59_000}
ID_KIND = Chooser({"text": 84, "apostrophe": 8, "float": 8})
NAME_KIND_TABLE = {"plain": 72, "pad": 16, "typo": 6, "traditional": 6}
NAME_KIND = Chooser(NAME_KIND_TABLE)


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One person-bearing roster row as the truth sees it."""

    programme: str  # "dibao" | "senior"
    month: str  # YYYYMM
    seq: int  # 序号
    file: str
    person: Person
    amount_fen: int


def write_civil(
    rng: random.Random, street: Street, out: Path
) -> tuple[dict[str, int], list[tuple[str, str, str]], list[RosterRow]]:
    """Write both months' rosters; return rows per file, truth records and the month-M rows."""
    out.mkdir(parents=True, exist_ok=True)
    counts, records, month_rows = {}, [], []
    households = _dibao_households(rng, street)
    cards = {p.pid: "6217" + f"{rng.randrange(10**15):015d}" for p in street.persons if _senior_eligible(p)}
    for first, is_m in ((street.prev_month_first, False), (street.month_first, True)):
        ym = f"{first:%Y%m}"
        dibao = [h for h in households if _on_dibao(h[0], first)]
        name = f"{street.code}_{ym}_低保.xlsx"
        kinds = _dibao_kinds(rng, dibao, street.quirks)
        counts[name] = _write_dibao(rng, street, out / name, first, dibao, kinds)
        if is_m:
            dibao, kinds = _correct(rng, dibao, kinds, first)
            name = f"{street.code}_{ym}_低保_更正.xlsx"
            counts[name] = _write_dibao(rng, street, out / name, first, dibao, kinds, correction=True)
        rows = [
            RosterRow("dibao", ym, i + 1, name, h[0], k["amount"])
            for i, (h, k) in enumerate(zip(dibao, kinds, strict=True))
        ]
        seniors = [p for p in street.persons if _on_senior(p, first)]
        name = f"{street.code}_{ym}_高龄补贴.csv"
        amounts = _write_senior(rng, street, out / name, first, seniors, cards)
        counts[name] = len(seniors)
        rows += [
            RosterRow("senior", ym, i + 1, name, p, a)
            for i, (p, a) in enumerate(zip(seniors, amounts, strict=True))
        ]
        records += [("civil_affairs", f"{r.programme}:{r.month}:{r.seq}", r.person.pid) for r in rows]
        if is_m:
            month_rows = rows
    return counts, records, month_rows


def _senior_eligible(p: Person) -> bool:
    return p.role == "resident" and p.in_registry and p.hukou == "户籍"


def _on_senior(p: Person, first: dt.date) -> bool:
    """On the month's roster: 户籍, 80+ on its first day, and alive and here then, or not yet removed."""
    if not _senior_eligible(p) or age_on(p.birth, first) < 80 or "senior_gap" in p.flags:
        return False
    return (
        p.living or p.exit_date >= first or "senior_stale_dead" in p.flags or "senior_stale_moved" in p.flags
    )


def _on_dibao(p: Person, first: dt.date) -> bool:
    """On the month's first file: here on its first day, or left but not yet struck off."""
    if "dibao" not in p.flags:
        return False
    return p.living or p.exit_date >= first or bool(p.flags & {"dibao_stale", "dibao_removed"})


def _dibao_households(rng: random.Random, street: Street) -> list[tuple[Person, int, str, int]]:
    """(head, household size, category, covered people); the amount is drawn per month."""
    heads = [p for p in street.persons if "dibao" in p.flags]
    kinds = list(DIBAO_STANDARD)
    categories = [
        kinds[i] if i < len(kinds) else rng.choice(kinds) for i in range(len(heads))
    ]  # each at least once
    rng.shuffle(categories)
    result = []
    for p, category in zip(heads, categories, strict=True):
        size = max(1, sum(1 for m in p.house.members if m.living or m is p))
        result.append((p, size, category, size if rng.random() < 0.8 else max(1, size - 1)))
    return result


def _amount(rng: random.Random, category: str, covered: int) -> int:
    """Fen: the standard per covered person, less a means-tested deduction now and then (hence decimals)."""
    deduction = rng.randrange(0, 15_000, 50) if rng.random() < 0.4 else 0
    return max(10_000, covered * DIBAO_STANDARD[category] - deduction)


def _dibao_kinds(rng: random.Random, rows: list, q: quirks.Quirks | None = None) -> list[dict]:
    """How each row's ID and name are written, and its amount this month."""
    ids = [ID_KIND.pick(rng) for _ in rows]
    ensure_each(rng, ids, ("float", "apostrophe"), "text", lambda i, _k: rows[i][0].id_number[-1] != "X")
    name_kinds = [quirks.tables(q or quirks.Quirks()).civil_name.pick(rng) for _ in rows]
    ensure_each(
        rng, name_kinds, ("pad",), ("plain", "typo", "traditional"), lambda i, _k: len(rows[i][0].name) == 2
    )
    return [
        {"id": a, "name": b, "amount": _amount(rng, h[2], h[3])}
        for a, b, h in zip(ids, name_kinds, rows, strict=True)
    ]


def _correct(rng: random.Random, rows: list, kinds: list[dict], first: dt.date) -> tuple[list, list[dict]]:
    """The correction: heads who had left before the month removed, one damaged ID retyped, amounts revised."""
    keep = [i for i, h in enumerate(rows) if "dibao_removed" not in h[0].flags]
    fixed = next((i for i in keep if kinds[i]["id"] == "float"), None)
    new_kinds = []
    for i in keep:
        kind = dict(kinds[i])
        if i == fixed:
            kind["id"] = "text"
        elif rng.random() < 0.3:
            kind["amount"] = _amount(rng, rows[i][2], rows[i][3])
        new_kinds.append(kind)
    return [rows[i] for i in keep], new_kinds


def roster_name(name: str, kind: str) -> str:
    if kind == "pad":
        return names.pad_two(name)
    if kind == "typo":
        return names.homophone_typo(name) or name
    if kind == "traditional":
        return names.traditional(name) or name
    return name


def _xlsx_id(number: str, kind: str) -> str | float:
    if kind == "float" and number[-1] != "X" and len(number) == 18:
        return excel_float(number)
    return "'" + number if kind == "apostrophe" else number


def _money(fen: int) -> int | float:
    return fen // 100 if fen % 100 == 0 else fen / 100


def _write_dibao(
    rng, street: Street, path: Path, first: dt.date, rows: list, kinds: list[dict], correction: bool = False
) -> int:
    made = min(first + dt.timedelta(days=11 if correction else 4), street.as_of)
    wb = Workbook()
    ws = wb.active
    ws.title = "花名册"
    ws.append([f"彭山区{street.name}{first.year}年{first.month}月城乡低保发放花名册"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(DIBAO_HEADER))
    ws.append([f"制表单位：{street.name}民政办"] + [None] * 7 + [f"制表日期：{made}"])
    ws.append(DIBAO_HEADER)
    for i, ((head, size, category, covered), kind) in enumerate(zip(rows, kinds, strict=True)):
        house = head.house
        style = "full" if rng.random() < 0.6 else "city"
        ws.append(
            [
                i + 1,
                roster_name(head.name, kind["name"]),
                _xlsx_id(head.id_number, kind["id"]),
                size,
                covered,
                head.phone or "",
                render_address(house.estate.name, house.building, house.unit, house.room, style),
                category,
                _money(kind["amount"]),
                f"{first:%Y%m}",
                house.estate.community_name,
            ]
        )
    ws.append(["合计"] + [None] * 7 + [_money(sum(k["amount"] for k in kinds))])
    moment = dt.datetime.combine(made, dt.time(9, 0))
    wb.properties.creator = f"{street.name}民政办"
    wb.properties.created = wb.properties.modified = moment
    path.write_bytes(_fixed_zip(_workbook_bytes(wb), moment))
    return len(rows)


def _workbook_bytes(wb: Workbook) -> bytes:
    """Save without ``openpyxl.save_workbook``, which stamps the current time into the properties."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).write_data()
    return buffer.getvalue()


def _fixed_zip(raw: bytes, moment: dt.datetime) -> bytes:
    """The same archive with every entry dated ``moment``: ZIP entries otherwise carry the write time."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=moment.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def _senior_standard(age: int) -> int:
    return 10_000 if age < 90 else 30_000 if age < 100 else 50_000


def _write_senior(
    rng: random.Random,
    street: Street,
    path: Path,
    first: dt.date,
    people: list[Person],
    cards: dict[str, str],
) -> list[int]:
    """GB18030 with CRLF, a header row, the people, a 合计 row; returns each row's amount in fen."""
    id_kinds = [Chooser({"text": 86, "float": 7, "apostrophe": 7}).pick(rng) for _ in people]
    ensure_each(rng, id_kinds, ("float", "apostrophe"), "text", lambda i, _k: people[i].id_number[-1] != "X")
    t = quirks.tables(street.quirks)
    name_kinds = [t.civil_name.pick(rng) for _ in people]
    ensure_each(
        rng,
        name_kinds,
        quirks.present(t.civil_name, ("pad", "typo", "traditional")),
        "plain",
        lambda i, k: roster_name(people[i].name, k) != people[i].name,
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(SENIOR_HEADER)
    amounts = []
    for i, (p, id_kind, name_kind) in enumerate(zip(people, id_kinds, name_kinds, strict=True)):
        age = age_on(p.birth, first)
        standard = _senior_standard(age)
        # A tenth of rows carry back pay for part of a month (newly enrolled, a late paper): decimals.
        amount = standard + (standard * randint(rng, 1, 29) // 30 if rng.random() < 0.1 else 0)
        amounts.append(amount)
        number = p.id_number
        shown = (
            excel_csv_text(number)
            if id_kind == "float" and number[-1] != "X"
            else ("'" + number if id_kind == "apostrophe" else number)
        )
        writer.writerow(
            [
                i + 1,
                roster_name(p.name, name_kind),
                "男" if p.sex == 1 else "女",
                shown,
                f"{p.birth:%Y.%m}",
                age,
                standard // 100,
                _money_text(amount),
                cards[p.pid],
                p.house.estate.community_name,
            ]
        )
    writer.writerow(["合计", "", "", "", "", "", "", _money_text(sum(amounts)), "", ""])
    path.write_bytes(buffer.getvalue().encode("gb18030"))
    return amounts


def _money_text(fen: int) -> str:
    return str(fen // 100) if fen % 100 == 0 else f"{fen // 100}.{fen % 100:02d}"
