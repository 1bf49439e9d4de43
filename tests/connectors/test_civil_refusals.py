"""The civil rosters under hostile files (#15): what must never replace, drop, or be read, and every file's
outcome recorded with a reason."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pytest

from islandbridge.config import SourceSettings
from islandbridge.connectors import build_connector
from islandbridge.transforms.normalize import normalize_id

from .hostile import (
    DIBAO_MONEY,
    SENIOR_MONEY,
    dibao_row,
    dibao_xlsx,
    money_total,
    roster_name,
    senior_csv,
    senior_row,
)
from .test_civil_files import extract


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "civil"
    path.mkdir()
    return path


def _outcomes(run) -> dict[str, tuple[str, str | None]]:
    return {f["file"]: (f["outcome"], f["reason"]) for f in run.manifest["files"]}


# --------------------------------------------------------------------------- 1. a bad correction


def test_correction_with_every_row_quarantined_never_replaces_the_month(folder: Path, tmp_path: Path):
    """A _更正2 whose rows all lack 序号 lands nothing, deletes nothing and stays out of the state."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    first = extract(folder, tmp_path)
    bad = roster_name(correction="_更正2")
    (folder / bad).write_bytes(dibao_xlsx([["", *dibao_row(i)[1:]] for i in (1, 2)]))
    second = extract(folder, tmp_path, first.state)
    assert second.deleted == []
    assert second.count("dibao", "landed") == 0
    assert second.count("dibao", "quarantined") == second.count("dibao", "read") == 2
    assert second.state["months"] == first.state["months"]
    outcome, reason = _outcomes(second)[bad]
    assert outcome == "refused"
    assert f"{roster_name()} stays the month's roster" in reason
    assert _outcomes(second)[roster_name()][0] == "kept"
    assert second.state["superseded"] == {}, "nothing replaced the base"


def test_correction_with_some_rows_quarantined_never_replaces_the_month(folder: Path, tmp_path: Path):
    """One bad row in a later correction refuses the whole correction: its good rows are quarantined too
    (with the refusal), the earlier version's keys are not deleted."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    first = extract(folder, tmp_path)
    bad = roster_name(correction="_更正")
    (folder / bad).write_bytes(dibao_xlsx([dibao_row(1), dibao_row(1)]))
    second = extract(folder, tmp_path, first.state)
    assert (second.count("dibao", "landed"), second.count("dibao", "quarantined")) == (0, 2)
    assert second.deleted == []
    assert second.state["months"] == first.state["months"]
    reasons = sorted(q["reason"] for q in second.quarantine)
    assert reasons[0].startswith("1 of the file's 2 rows is quarantined")
    assert reasons[1] == "序号 1 repeats row 4"
    assert _outcomes(second)[bad][0] == "refused"


def test_first_version_with_no_landable_row_is_refused_and_tried_again(folder: Path, tmp_path: Path):
    name = roster_name()
    (folder / name).write_bytes(dibao_xlsx([["", *dibao_row(1)[1:]]]))
    run = extract(folder, tmp_path)
    assert run.state["months"] == {} and run.state["files"] == {}
    outcome, reason = _outcomes(run)[name]
    assert outcome == "refused" and "none of the file's 1 row can be landed" in reason
    assert [q["reason"] for q in run.quarantine] == ["序号 is empty: the row has no record key"]


def test_roster_without_data_rows_never_replaces_the_month(folder: Path, tmp_path: Path):
    """A correction holding only its header and a 合计 of 0 is refused as a file, not an empty month."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(1)]))
    first = extract(folder, tmp_path)
    empty = roster_name(correction="_更正")
    (folder / empty).write_bytes(dibao_xlsx([], total=0))
    second = extract(folder, tmp_path, first.state)
    assert second.deleted == []
    assert [q["_record_key"] for q in second.quarantine] == [f"file:{empty}"]
    assert "no data rows" in second.quarantine[0]["reason"]
    assert second.state["months"] == first.state["months"]


def test_clean_correction_still_replaces_and_a_partial_first_version_still_lands(
    folder: Path, tmp_path: Path
):
    """The refusal is only for replacing: a first version lands its good rows, a clean correction wins."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(1), ["", *dibao_row(2)[1:]], dibao_row(3)]))
    first = extract(folder, tmp_path)
    assert (first.count("dibao", "landed"), first.count("dibao", "quarantined")) == (2, 1)
    assert _outcomes(first)[roster_name()] == ("landed", "1 row quarantined, each with its reason")
    (folder / roster_name(correction="_更正")).write_bytes(dibao_xlsx([dibao_row(1)]))
    second = extract(folder, tmp_path, first.state)
    assert second.deleted == ["dibao:202611:3"]
    assert _outcomes(second)[roster_name()][0] == "superseded"


# --------------------------------------------------------------------------- 2. an unchanged month


def test_unchanged_senior_csv_of_the_next_month_lands_for_that_month(folder: Path, tmp_path: Path):
    data = senior_csv([senior_row(i) for i in (1, 2)])
    (folder / roster_name("高龄补贴", month="202611", ext="csv")).write_bytes(data)
    first = extract(folder, tmp_path)
    nxt = roster_name("高龄补贴", month="202612", ext="csv")
    (folder / nxt).write_bytes(data)
    second = extract(folder, tmp_path, first.state)
    assert sorted(r["_record_key"] for r in second.rows["senior"]) == ["senior:202612:1", "senior:202612:2"]
    assert second.count("senior", "duplicates") == 2, "the November file itself is a duplicate"
    assert _outcomes(second)[nxt] == ("landed", None)
    assert second.state["months"]["senior:202612"]["file"] == nxt


def test_state_of_the_previous_version_is_upgraded_not_forgotten(folder: Path, tmp_path: Path):
    """A state written before files were keyed per month still knows the landed version (no re-landing)."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(1)]))
    first = extract(folder, tmp_path)
    old = {
        **first.state,
        "version": 1,
        "files": {
            v["sha"]: {k: x for k, x in v.items() if k != "sha"} for v in first.state["files"].values()
        },
    }
    again = extract(folder, tmp_path, old)
    assert (again.count("dibao", "landed"), again.count("dibao", "duplicates")) == (0, 1)


# --------------------------------------------------------------------------- 3. rows below a 合计


def _subtotalled_xlsx() -> bytes:
    """Rows 1-3, a 合计 of those, rows 4-6, a 合计 of all six."""
    first, second = [dibao_row(i) for i in (1, 2, 3)], [dibao_row(i) for i in (4, 5, 6)]
    book = openpyxl.load_workbook(io.BytesIO(dibao_xlsx(first)))
    sheet = book.active
    for row in second:
        sheet.append(row)
    sheet.append(["合计", *[None] * (DIBAO_MONEY - 1), int(money_total(first + second, DIBAO_MONEY))])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_rows_after_a_mid_file_subtotal_are_read_and_the_file_refused(folder: Path, tmp_path: Path):
    (folder / roster_name()).write_bytes(_subtotalled_xlsx())
    run = extract(folder, tmp_path)
    assert run.count("dibao", "read") == 6, "all six rows are read, none dropped"
    assert (run.count("dibao", "landed"), run.count("dibao", "quarantined")) == (0, 6)
    assert all("below the 合计 row" in q["reason"] for q in run.quarantine)
    assert _outcomes(run)[roster_name()][0] == "refused"


def test_csv_rows_after_a_subtotal_are_read_and_the_file_refused(folder: Path, tmp_path: Path):
    rows = [senior_row(i) for i in range(1, 7)]
    top = senior_csv(rows[:3]).decode("gb18030")
    rest = "".join(",".join(r) + "\r\n" for r in rows[3:])
    total = ",".join(["合计", *[""] * (SENIOR_MONEY - 1), str(money_total(rows, SENIOR_MONEY)), "", ""])
    name = roster_name("高龄补贴", ext="csv")
    (folder / name).write_bytes((top + rest + total + "\r\n").encode("gb18030"))
    run = extract(folder, tmp_path)
    assert (run.count("senior", "read"), run.count("senior", "quarantined")) == (6, 6)


def test_signature_lines_below_the_totals_are_not_data(folder: Path, tmp_path: Path):
    book = openpyxl.load_workbook(io.BytesIO(dibao_xlsx([dibao_row(1), dibao_row(2)])))
    book.active.append(["制表人：王某", None, None, "审核人：李某"])
    book.active.append([None, "（盖章）", None, None, None, None, None, None, "2026年11月5日"])
    out = io.BytesIO()
    book.save(out)
    (folder / roster_name()).write_bytes(out.getvalue())
    run = extract(folder, tmp_path)
    assert (run.count("dibao", "landed"), run.count("dibao", "quarantined")) == (2, 0)


# --------------------------------------------------------------------------- 4. which worksheet


def _book(*sheets: tuple[list, str]) -> bytes:
    """A workbook of roster sheets (rows, state 'visible'/'hidden'); the first visible one is active."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for n, (rows, state) in enumerate(sheets):
        sheet = book.create_sheet(f"表{n + 1}")
        source = openpyxl.load_workbook(io.BytesIO(dibao_xlsx(rows)), read_only=True)
        for cells in source.active.iter_rows(values_only=True):
            sheet.append(cells)
        sheet.sheet_state = state
    book.active = next(n for n, (_, state) in enumerate(sheets) if state == "visible")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _notes_book(roster: list) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(dibao_xlsx(roster)))
    notes = book.create_sheet("说明", 0)
    notes.append(["本表由街道民政办填报"])
    book.active = 1
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_hidden_stale_first_sheet_is_not_read(folder: Path, tmp_path: Path):
    stale = [dibao_row(i, amount=1) for i in (1, 2, 3)]
    current = [dibao_row(i, amount=500) for i in (1, 2)]
    (folder / roster_name()).write_bytes(_book((stale, "hidden"), (current, "visible")))
    run = extract(folder, tmp_path)
    assert [r["月保障金(元)"] for r in run.rows["dibao"]] == ["500", "500"]


def test_a_visible_notes_sheet_before_the_roster_does_not_hide_it(folder: Path, tmp_path: Path):
    (folder / roster_name()).write_bytes(_notes_book([dibao_row(1), dibao_row(2)]))
    assert extract(folder, tmp_path).count("dibao", "landed") == 2


def test_two_visible_roster_sheets_refuse_the_file(folder: Path, tmp_path: Path):
    sheets = ([dibao_row(1)], "visible"), ([dibao_row(1), dibao_row(2)], "visible")
    (folder / roster_name()).write_bytes(_book(*sheets))
    run = extract(folder, tmp_path)
    assert [q["_record_key"] for q in run.quarantine] == [f"file:{roster_name()}"]
    assert "worksheets 1, 2 are all visible" in run.quarantine[0]["reason"]


# --------------------------------------------------------------------------- 5. another street


def test_the_street_code_defaults_to_the_configured_street(folder: Path, tmp_path: Path):
    """Without its own street_code the civil source takes ``street.code``: another street's file is
    refused and recorded, this street's lands."""
    other = "511403002_202611_低保.xlsx"
    (folder / other).write_bytes(dibao_xlsx([dibao_row(1)]))
    (folder / roster_name("高龄补贴", ext="csv")).write_bytes(senior_csv([senior_row(1)]))
    settings = SourceSettings("civil", "civil_files", {"path": str(folder)}, street_code="511403001")
    connector = build_connector(settings)
    assert connector.street == "511403001"
    run = extract(folder, tmp_path, street_code="511403001")
    assert run.count("dibao", "read") == 0
    outcome, reason = _outcomes(run)[other]
    assert outcome == "refused" and "street 511403002" in reason


def test_the_configuration_passes_the_street_to_the_civil_source(tmp_path: Path):
    from islandbridge.config import parse_settings

    raw = {
        "street": {"code": "511403001"},
        "landing": {"url": str(tmp_path / "landing")},
        "warehouse": {"path": "w.duckdb"},
        "sources": {"civil": {"kind": "civil_files", "path": str(tmp_path)}},
    }
    settings = parse_settings(raw, base_dir=tmp_path, environ={})
    assert build_connector(settings.source("civil")).street == "511403001"


# --------------------------------------------------------------------------- 6. Excel-damaged IDs


def _integer_id_xlsx(number: str) -> bytes:
    """A workbook whose ID cell is a number written as an integer in the sheet XML."""
    data = dibao_xlsx([dibao_row(1, sfzh=float(number)), dibao_row(2)])
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in source.namelist():
            body = source.read(entry)
            if entry == "xl/worksheets/sheet1.xml":
                body = body.replace(f"<v>{float(number)!r}</v>".encode(), f"<v>{number}</v>".encode())
                assert f"<v>{number}</v>".encode() in body
            archive.writestr(entry, body)
    return out.getvalue()


def test_an_integer_id_cell_is_damage_whatever_its_check_digit(folder: Path, tmp_path: Path):
    number = "360102200210121000"  # passes the GB 11643 check digit
    assert normalize_id(number).kind == "full"
    (folder / roster_name()).write_bytes(_integer_id_xlsx(number))
    run = extract(folder, tmp_path)
    landed = {r["序号"]: r["身份证号码"] for r in run.rows["dibao"]}
    assert normalize_id(landed["1"]).kind == "excel_damaged"
    assert normalize_id(landed["2"]).kind != "excel_damaged", "a text ID cell is read as text"
