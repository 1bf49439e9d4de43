"""Department files as spreadsheet programs open them (issue #14).

The workbook is read back with openpyxl, as Excel's own file format holds it: text cells for ID numbers
and phones (all 18 characters), real dates, numeric counts. The CSV is read back by LibreOffice's
CSV import with the filter options ``CSV:44,34,76`` (comma, ``"``, UTF-8: what docs/exports.md tells a
clerk to pick) through ``soffice --convert-to xlsx``, the machine's LibreOffice from the distribution's
packages; CI installs it (``.ci/run``), elsewhere that test skips with the reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import unicodedata

import duckdb
import openpyxl
import pytest

from islandbridge.delivery.export import export_run
from islandbridge.delivery.files import cell_value, spreadsheet_text
from islandbridge.delivery.policy import load_policies
from islandbridge.delivery.workbook import DEFINITION_SHEET, sheet_name
from islandbridge.transforms.normalize.ids import KINDS
from tests.exports.support import AS_OF, DAY, RUN_ID

IDS = {"511403194510310077", "511421199105155128", "51142119440427524X"}


@pytest.fixture
def exported(settings, con):
    export_run(settings, con, AS_OF, RUN_ID, clock=lambda: dt.datetime(2026, 11, 21, 1, tzinfo=dt.UTC))
    return settings.exports_dir


def workbook(root, department, report):
    return openpyxl.load_workbook(root / department / DAY / f"{report}.xlsx")


def data_rows(book, report):
    sheet = book[sheet_name(load_policies()[_department_of(report)].reports[report])]
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    return sheet, header, [dict(zip(header, r, strict=True)) for r in rows]


def _department_of(report):
    return next(d for d, p in load_policies().items() if report in p.reports)


def test_id_numbers_are_text_cells_with_all_18_characters(exported):
    sheet, header, rows = data_rows(
        workbook(exported, "civil_affairs", "senior_allowance_gaps"), "senior_allowance_gaps"
    )
    column = header.index("身份证号码") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, sheet.max_row + 1)]
    assert {c.value for c in cells if c.value} <= IDS and any(c.value for c in cells)
    assert all(c.data_type == "s" and len(c.value) == 18 for c in cells if c.value)
    assert sheet.cell(row=2, column=column).number_format == "@"


def test_dates_are_dates_and_counts_are_numbers(exported):
    _, _, rows = data_rows(
        workbook(exported, "civil_affairs", "senior_allowance_gaps"), "senior_allowance_gaps"
    )
    assert all(isinstance(r["年龄"], int) for r in rows)
    _, _, alerts = data_rows(workbook(exported, "grid_centre", "elderly_alerts"), "elderly_alerts")
    seen = [r["最后一次刷卡开门"] for r in alerts if r["最后一次刷卡开门"]]
    assert seen and all(isinstance(v, dt.datetime) for v in seen)
    assert dt.datetime(2026, 11, 18, 8, 0) in seen  # Asia/Shanghai local time, as the CSV shows it


def test_a_number_shows_the_decimals_its_definition_states(exported):
    """无动静小时数 is "保留一位小数" (DECIMAL(10, 1)): its cells show 0.0, as the CSV writes 224.9; an
    amount in yuan (DECIMAL(12, 2)) keeps its fen: 0.00."""
    for department, report, header in (
        ("grid_centre", "elderly_alerts", "无动静小时数"),
        ("civil_affairs", "subsidy_after_exit", "金额（元）"),
    ):
        sheet, headers, rows = data_rows(workbook(exported, department, report), report)
        column = headers.index(header) + 1
        cells = [sheet.cell(row=i, column=column) for i in range(2, len(rows) + 2)]
        numbers = [c for c in cells if isinstance(c.value, float | int)]
        assert numbers, (report, header)
        assert {c.number_format for c in numbers} == {"0.0" if header == "无动静小时数" else "0.00"}
    definition = workbook(exported, "grid_centre", "elderly_alerts")[DEFINITION_SHEET]
    assert any("保留一位小数" in str(v) for row in definition.iter_rows(values_only=True) for v in row)


def test_a_month_is_a_date_shown_as_its_month(exported):
    sheet, header, rows = data_rows(
        workbook(exported, "street_office", "incidents_by_building"), "incidents_by_building"
    )
    column = header.index("月份") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, sheet.max_row + 1)]
    assert cells and all(isinstance(c.value, dt.datetime) and c.value.day == 1 for c in cells)
    assert {c.number_format for c in cells} == {"yyyy-mm"}


def test_a_birth_date_column_is_text_of_one_shape_whether_a_day_or_a_month(exported):
    """出生日期 holds a registry's date or a roster's 出生年月: all text, so a spreadsheet sorts them by date
    and filters them together (a date cell beside text sorts apart)."""
    sheet, header, _ = data_rows(
        workbook(exported, "civil_affairs", "senior_allowance_gaps"), "senior_allowance_gaps"
    )
    column = header.index("出生日期") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, sheet.max_row + 1)]
    values = [c.value for c in cells if c.value is not None]
    assert any(len(v) == 10 for v in values) and any(len(v) == 7 for v in values)
    assert all(re.fullmatch(r"[0-9]{4}-[0-9]{2}(-[0-9]{2})?", v) for v in values)
    assert {c.data_type for c in cells if c.value is not None} == {"s"}
    assert sheet.cell(row=2, column=column).number_format == "@"


def test_headers_are_chinese_frozen_and_person_ref_comes_last(exported):
    sheet, header, _ = data_rows(workbook(exported, "grid_centre", "elderly_alerts"), "elderly_alerts")
    assert header[:3] == ["姓名", "联系电话", "住址"] and header[-1] == "人员编号"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    assert sheet.column_dimensions["C"].width >= 20  # the address fits


def test_small_counts_read_under_5_in_their_cell_right_aligned_among_numbers(exported):
    """DEPARTMENTS.md: "Any count of persons under 5 is shown as `<5`" — in the workbook too, not a blank
    cell; no extra column; the other counts stay numbers."""
    sheet, header, rows = data_rows(workbook(exported, "street_office", "island_coverage"), "island_coverage")
    small = next(r for r in rows if r["社区"] == "长寿社区")
    assert small["已知人数"] == "<5" and small["网格平台人数"] == 5
    assert not any(h.startswith("少于") for h in header)
    cell = sheet.cell(row=2 + rows.index(small), column=header.index("已知人数") + 1)
    assert cell.data_type == "s" and cell.alignment.horizontal == "right"
    assert all(isinstance(r["网格平台人数"], int) for r in rows)


def test_the_definition_sheet_names_the_report_day_run_and_columns(exported):
    book = workbook(exported, "civil_affairs", "subsidy_after_exit")
    text = [str(v) for row in book[DEFINITION_SHEET].iter_rows(values_only=True) for v in row if v]
    assert RUN_ID in text and any(DAY in t for t in text)
    assert {"amount_yuan", "金额（元）", "mart:amount_yuan"} <= set(text)


def test_the_definition_sheet_states_the_small_count_threshold(exported):
    """The clerk reads "少于 5 人 … 写作 <5", what the report sheet's cells show, not a placeholder."""
    book = workbook(exported, "street_office", "island_coverage")
    facts = {row[0]: row[1] for row in book[DEFINITION_SHEET].iter_rows(values_only=True) if row[0]}
    assert facts["小数保护 small counts"].startswith("少于 5 人（包括 0）的计数不显示具体数，写作 <5")
    assert "counts under 5 (0 included) show as <5" in facts["小数保护 small counts"]


def test_the_definition_sheet_says_what_the_exit_status_codes_mean(exported):
    """A clerk reading 离开状态 2 迁出 or 3 死亡 finds on the 说明 sheet what it means and its code."""
    book = workbook(exported, "civil_affairs", "subsidy_after_exit")
    meaning = {row[0]: row[3] for row in book[DEFINITION_SHEET].iter_rows(values_only=True) if row[0]}
    assert meaning["离开状态"].startswith("2 迁出，3 死亡")
    assert "2 迁出 = 2，3 死亡 = 3" in meaning["离开状态"]


def test_codes_read_as_chinese_labels_in_the_workbook_and_stay_codes_in_the_csv(exported):
    """无法匹配的原因, 身份证号码问题 and 离开状态 show the policy's Chinese label (无候选人员, 2 迁出), not
    no_candidate or 2; the CSV, read by programs, keeps the code; the 说明 sheet pairs them."""
    reports = load_policies()["civil_affairs"].reports
    labelled = {(n, r.header): r for n, p in reports.items() for r in p.columns if r.cell_labels}
    assert {h for _, h in labelled} == {"无法匹配的原因", "身份证号码问题", "离开状态"}
    shown = set()
    for report in ("unmatched_roster_rows", "subsidy_after_exit"):
        _, _, rows = data_rows(workbook(exported, "civil_affairs", report), report)
        with (exported / "civil_affairs" / DAY / f"{report}.csv").open(encoding="utf-8-sig") as f:
            codes = list(csv.DictReader(f))
        for row, coded in zip(rows, codes, strict=True):
            for (of, header), rule in labelled.items():
                if of == report and coded[rule.name]:
                    assert row[header] == dict(rule.cell_labels)[coded[rule.name]] != coded[rule.name]
                    shown.add(header)
    assert shown == {"无法匹配的原因", "身份证号码问题", "离开状态"}
    book = workbook(exported, "civil_affairs", "unmatched_roster_rows")
    meaning = {r[0]: r[3] for r in book[DEFINITION_SHEET].iter_rows(values_only=True) if r[0]}
    assert "无候选人员 = no_candidate" in meaning["无法匹配的原因"]


def test_every_id_kind_and_reason_has_a_label():
    """A code the pipeline can write never reaches the clerk bare: every kind of ID number and every reason
    the mart gives has its label."""
    columns = {
        r.name: dict(r.cell_labels)
        for r in load_policies()["civil_affairs"].reports["unmatched_roster_rows"].columns
    }
    assert set(KINDS) <= set(columns["id_kind"])
    assert set(columns["reason"]) == {"damaged_id_number", "ambiguous", "no_candidate"}


def test_the_definition_sheet_defines_the_report_and_every_column_in_chinese(exported):
    """A clerk reads Chinese: the definition is the policy's Chinese one (the English follows), and no
    column's 说明 meaning is empty; 出生日期 says why it can be blank beside an age."""
    book = workbook(exported, "civil_affairs", "senior_allowance_gaps")
    rows = [r for r in book[DEFINITION_SHEET].iter_rows(values_only=True) if r[0]]
    facts = {r[0]: r[1] for r in rows}
    assert facts["定义 definition"].startswith("应享未享：")
    assert facts["英文定义 in English"].startswith("living 户籍 residents aged 80+")
    top = next(i for i, r in enumerate(rows) if r[0] == "列 column")
    meanings = {r[0]: r[3] for r in rows[top + 1 :]}
    assert list(meanings) == ["人员编号", "姓名", "身份证号码", "社区", "出生日期", "年龄"]
    assert all(meanings.values())
    assert "身份证号码里的出生日期" in meanings["出生日期"]


def test_both_sheets_print_every_column_on_one_page_width(exported):
    """LibreOffice printed a 10-column report over six portrait pages, the ID and amount away from the
    name; now landscape, one page wide, the header repeated on every page."""
    book = workbook(exported, "civil_affairs", "subsidy_after_exit")
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert setup.orientation == "landscape" and sheet.sheet_properties.pageSetUpPr.fitToPage
        assert (setup.fitToWidth or 1, setup.fitToHeight) == (1, 0)  # OOXML: an absent fitToWidth is 1
    assert book.worksheets[0].print_title_rows == "$1:$1"


def test_a_definition_longer_than_its_column_gets_a_row_tall_enough(exported):
    """The wrapped definition printed its second line over the 数据日期 row below it."""
    sheet = workbook(exported, "grid_centre", "elderly_alerts")[DEFINITION_SHEET]
    row = next(
        r for r in range(1, sheet.max_row + 1) if sheet.cell(row=r, column=1).value == "定义 definition"
    )
    assert sheet.row_dimensions[row].height >= 2 * 15  # 150 characters in a column 60 wide: 3 lines
    run_id = next(
        r for r in range(1, sheet.max_row + 1) if sheet.cell(row=r, column=1).value == "运行编号 run id"
    )
    assert sheet.row_dimensions[run_id].height is None  # one-line rows keep the default


def test_a_report_s_note_is_on_its_definition_sheet_and_in_the_manifest(settings):
    """The marts' notes for the run (e.g. M's roster has not arrived) reach the clerk: first on the
    说明 sheet after the definition, and in the department's manifest.json; other reports have none."""
    note = "2026-11 高龄补贴名册尚未收到：80 岁以上户籍居民全部列为应享未享，并非都未领取 / ..."
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "CREATE TABLE meta.mart_builds (run_id VARCHAR PRIMARY KEY, as_of TIMESTAMPTZ, options VARCHAR, "
            "counts VARCHAR, notes VARCHAR)"
        )
        con.execute(
            "INSERT INTO meta.mart_builds VALUES (?, ?, '{}', '{}', ?)",
            [RUN_ID, AS_OF, json.dumps({"senior_allowance_gaps": [note]}, ensure_ascii=False)],
        )
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        export_run(settings, con, AS_OF, RUN_ID, clock=lambda: dt.datetime(2026, 11, 21, 1, tzinfo=dt.UTC))
    root = settings.exports_dir
    facts = list(
        workbook(root, "civil_affairs", "senior_allowance_gaps")[DEFINITION_SHEET].iter_rows(values_only=True)
    )
    assert [r[0] for r in facts[:3]] == ["报表 report", "定义 definition", "注意 note"] and facts[2][
        1
    ] == note
    other = workbook(root, "civil_affairs", "subsidy_after_exit")[DEFINITION_SHEET]
    assert "注意 note" not in [r[0] for r in other.iter_rows(values_only=True)]
    manifest = json.loads((root / "civil_affairs" / DAY / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["notes"] == {"senior_allowance_gaps": [note]}
    grid = json.loads((root / "grid_centre" / DAY / "manifest.json").read_text(encoding="utf-8"))
    assert "notes" not in grid


def test_workbooks_are_byte_identical_on_a_rerun(settings, con, exported):
    before = {p: p.read_bytes() for p in exported.rglob("*.xlsx")}
    export_run(settings, con, AS_OF, RUN_ID, clock=lambda: dt.datetime(2026, 11, 21, 5, tzinfo=dt.UTC))
    assert before and {p: p.read_bytes() for p in exported.rglob("*.xlsx")} == before


def test_csv_writes_long_digit_runs_in_the_text_form():
    assert spreadsheet_text("511403194510310077") == '="511403194510310077"'
    assert spreadsheet_text("02812345678") == '="02812345678"'
    # 11 digits (a mobile number): exact as a number, but shown as 1.38001E+10 in a column of default width
    assert spreadsheet_text("13800138000") == '="13800138000"'
    assert spreadsheet_text("1380013800") == "1380013800"  # 10 digits: a count or amount stays a number
    assert spreadsheet_text("51142119440427524X") == "51142119440427524X"  # text already
    assert spreadsheet_text("=1+1") == "=1+1" and cell_value('="0571"') == "0571"


def test_csv_id_numbers_survive_libreoffice_import(exported, tmp_path):
    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("IB_REQUIRE_SERVICES"):
            pytest.fail("LibreOffice (soffice) is required in CI: .ci/run installs libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed; CI installs it")
    source = exported / "civil_affairs" / DAY / "senior_allowance_gaps.csv"
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--headless",
            "--infilter=CSV:44,34,76",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    sheet = openpyxl.load_workbook(tmp_path / "senior_allowance_gaps.xlsx", data_only=True).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    ids = [r[header.index("id_number")] for r in rows if r[header.index("id_number")]]
    assert ids and set(ids) <= IDS and all(isinstance(v, str) for v in ids)
    assert all(isinstance(r[header.index("age")], int) for r in rows)


def test_a_meaning_of_several_lines_gets_a_line_for_each_of_them_wrapped(exported):
    """A meaning written as several lines (the reason codes) wraps each line apart: counting the whole
    text as one line gave the 原因 row too few lines, and its last lines printed over the next row."""
    sheet = workbook(exported, "civil_affairs", "unmatched_roster_rows")[DEFINITION_SHEET]
    row = next(
        r for r in range(1, sheet.max_row + 1) if sheet.cell(row=r, column=1).value == "无法匹配的原因"
    )
    meaning = next(c for c in sheet[row] if c.value and str(c.value).startswith("身份证号码有误"))
    width = sheet.column_dimensions[meaning.column_letter].width - 2
    need = sum(max(1, math.ceil(_display_width(line) / width)) for line in meaning.value.split("\n"))
    assert need > 3 and sheet.row_dimensions[row].height >= need * 15


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
