"""The civil rosters' file formats: an extension in any case, an .xls (read when it is a workbook saved
under the old name, refused with a reason when it is Excel 97-2003), a column the SPEC does not name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .hostile import dibao_row, dibao_xlsx, roster_name, senior_csv, senior_row
from .test_civil_files import extract
from .test_civil_refusals import _outcomes

BIFF = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024  # an Excel 97-2003 (OLE2) file's first bytes
# a password-protected workbook: OLE2 too, its directory naming the EncryptedPackage stream (UTF-16LE)
ENCRYPTED = BIFF[:512] + b"\0" * 512 + "EncryptedPackage".encode("utf-16-le").ljust(64, b"\0") + b"\0" * 448


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "civil"
    path.mkdir()
    return path


def _with_column(data: bytes, name: str, value: str) -> bytes:
    """A 高龄补贴 CSV with one more column at the end: ``name`` in the header, ``value`` in each data row."""
    lines = data.decode("gb18030").split("\r\n")
    out = [f"{lines[0]},{name}"] + [
        f"{line},{value}" if line and not line.startswith("合计") else line for line in lines[1:]
    ]
    return "\r\n".join(out).encode("gb18030")


@pytest.mark.parametrize("ext", ["XLSX", "Xlsx"])
def test_an_upper_case_extension_is_a_roster(folder: Path, tmp_path: Path, ext: str):
    (folder / roster_name(ext=ext)).write_bytes(dibao_xlsx([dibao_row(1), dibao_row(2)]))
    run = extract(folder, tmp_path)
    assert run.count("dibao", "landed") == 2
    assert run.state["ignored"] == {}


def test_an_upper_case_csv_is_a_roster(folder: Path, tmp_path: Path):
    (folder / roster_name("高龄补贴", ext="Csv")).write_bytes(senior_csv([senior_row(1)]))
    assert extract(folder, tmp_path).count("senior", "landed") == 1


def test_a_correction_saved_as_xls_that_is_a_workbook_replaces_the_month(folder: Path, tmp_path: Path):
    """An .xls whose bytes are an Excel 2007+ zip is read as .xlsx: the struck-off head is deleted."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    first = extract(folder, tmp_path)
    (folder / roster_name(correction="_更正", ext="xls")).write_bytes(
        dibao_xlsx([dibao_row(1), dibao_row(2)])
    )
    second = extract(folder, tmp_path, first.state)
    assert second.deleted == ["dibao:202611:3"]
    assert _outcomes(second)[roster_name(correction="_更正", ext="xls")] == ("landed", None)


def test_an_excel_97_correction_is_refused_loudly_not_ignored(folder: Path, tmp_path: Path):
    """A true BIFF .xls correction is quarantined as a file (read 1, quarantined 1) with what to do; the
    original stays the month's roster, marked kept because its correction was refused."""
    base, bad = roster_name(), roster_name(correction="_更正", ext="xls")
    (folder / base).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    first = extract(folder, tmp_path)
    (folder / bad).write_bytes(BIFF)
    second = extract(folder, tmp_path, first.state)
    assert bad not in second.state["ignored"]
    assert (second.count("dibao", "read"), second.count("dibao", "quarantined")) == (1 + 0, 1)
    assert [q["_record_key"] for q in second.quarantine] == [f"file:{bad}"]
    outcome, reason = _outcomes(second)[bad]
    assert outcome == "refused" and "Excel 97-2003" in reason and "save it as .xlsx" in reason
    assert _outcomes(second)[base][0] == "kept"
    assert second.state["months"] == first.state["months"]


def test_an_extra_column_lands_the_known_columns_and_names_it(folder: Path, tmp_path: Path):
    """A 备注 column added by a clerk: every row lands with the SPEC's columns, the column is named in the
    file's outcome and the state, and its free text is landed nowhere."""
    name = roster_name("高龄补贴", month="202612", ext="csv")
    rows = [senior_row(i) for i in range(1, 22)]
    (folder / name).write_bytes(_with_column(senior_csv(rows), "备注", "住院中请联系家属"))
    run = extract(folder, tmp_path)
    assert (run.count("senior", "read"), run.count("senior", "landed")) == (21, 21)
    assert run.quarantine == []
    assert all("备注" not in row for row in run.rows["senior"])
    assert run.state["unknown_columns"] == {name: ["备注"]}
    outcome, reason = _outcomes(run)[name]
    assert outcome == "landed" and "备注" in reason
    assert "住院中" not in str(run.manifest)
    assert not any("住院中" in str(v) for row in run.rows["senior"] for v in row.values())


def test_a_header_missing_a_column_quarantines_every_row_it_read(folder: Path, tmp_path: Path):
    """A refused header counts the file's rows as read and quarantined, each with the file's reason, as a
    truncated file does; not one record for the file."""
    name = roster_name("高龄补贴", ext="csv")
    data = senior_csv([senior_row(i) for i in (1, 2, 3)]).decode("gb18030").replace("银行卡号", "卡号")
    (folder / name).write_bytes(data.encode("gb18030"))
    run = extract(folder, tmp_path)
    assert (run.count("senior", "read"), run.count("senior", "quarantined")) == (3, 3)
    assert sorted(q["_record_key"] for q in run.quarantine) == [f"senior:202611:{i}" for i in (1, 2, 3)]
    assert all("missing column 银行卡号" in q["reason"] for q in run.quarantine)
    assert _outcomes(run)[name][0] == "refused"


def test_a_copied_synced_folder_with_an_xls_correction_is_not_silently_ignored(
    street_dir: Path, tmp_path: Path
):
    """QA's case on the generated street: its 低保 correction renamed .xls and made Excel 97-2003."""
    folder = tmp_path / "civil"
    shutil.copytree(street_dir / "civil", folder)
    correction = next(folder.glob("*_低保_更正.xlsx"))
    renamed = correction.with_suffix(".xls")
    correction.rename(renamed)
    renamed.write_bytes(BIFF)
    run = extract(folder, tmp_path)
    assert renamed.name not in run.state["ignored"]
    assert _outcomes(run)[renamed.name][0] == "refused"
    assert run.count("dibao", "quarantined") >= 1


def _balanced(run) -> bool:
    """Every record read is landed, quarantined or a duplicate, in each stream."""
    return all(
        s["read"] == s["landed"] + s["quarantined"] + s["duplicates"]
        for s in run.manifest["streams"].values()
    )


def test_the_xlsx_asked_for_beside_a_refused_xls_correction_corrects_the_month(folder: Path, tmp_path: Path):
    """Day 1 an Excel 97-2003 _更正.xls is refused (save it as .xlsx … and remove the .xls); day 2 the bureau
    puts the _更正.xlsx beside it: the .xlsx replaces the month, the .xls is superseded by it (read 1,
    quarantined 1); neither is refused, and a re-run changes nothing."""
    base, xls = roster_name(), roster_name(correction="_更正", ext="xls")
    xlsx = roster_name(correction="_更正")
    (folder / base).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    landed = extract(folder, tmp_path)
    (folder / xls).write_bytes(BIFF)
    day1 = extract(folder, tmp_path, landed.state)
    assert _outcomes(day1)[xls][0] == "refused" and "and remove the .xls" in _outcomes(day1)[xls][1]
    (folder / xlsx).write_bytes(dibao_xlsx([dibao_row(1), dibao_row(2)]))
    day2 = extract(folder, tmp_path, day1.state)
    assert _outcomes(day2)[xlsx] == ("landed", None)
    assert _outcomes(day2)[xls][0] == "superseded" and _outcomes(day2)[xls][1].startswith(
        f"superseded by {xlsx}"
    )
    assert day2.deleted == ["dibao:202611:3"]
    assert day2.state["months"]["dibao:202611"]["file"] == xlsx
    assert day2.state["superseded"][xls] == xlsx
    assert (
        day2.count("dibao", "read"),
        day2.count("dibao", "landed"),
        day2.count("dibao", "quarantined"),
    ) == (
        2 + 1,
        2,
        1,
    )
    assert [q["_record_key"] for q in day2.quarantine] == [f"file:{xls}"]
    again = extract(folder, tmp_path, day2.state)
    assert (again.count("dibao", "duplicates"), again.count("dibao", "quarantined")) == (2, 1)
    assert again.deleted == [] and again.state["months"] == day2.state["months"]
    assert all(_balanced(run) for run in (landed, day1, day2, again))


def test_the_xlsx_beside_a_refused_base_xls_becomes_the_months_roster(folder: Path, tmp_path: Path):
    """A base .xls refused on day 1 (the month has no roster); its .xlsx beside it on day 2 lands."""
    xls, xlsx = roster_name(ext="xls"), roster_name()
    (folder / xls).write_bytes(BIFF)
    day1 = extract(folder, tmp_path)
    assert _outcomes(day1)[xls][0] == "refused" and day1.state["months"] == {}
    (folder / xlsx).write_bytes(dibao_xlsx([dibao_row(1), dibao_row(2)]))
    day2 = extract(folder, tmp_path, day1.state)
    assert _outcomes(day2)[xlsx] == ("landed", None) and _outcomes(day2)[xls][0] == "superseded"
    assert (
        day2.count("dibao", "read"),
        day2.count("dibao", "landed"),
        day2.count("dibao", "quarantined"),
    ) == (
        3,
        2,
        1,
    )
    assert _balanced(day1) and _balanced(day2)


def test_two_readable_files_of_one_version_are_still_both_refused(folder: Path, tmp_path: Path):
    """Only an unreadable twin yields: a readable .xls workbook beside its .xlsx is a collision."""
    rows = [dibao_row(1), dibao_row(2)]
    (folder / roster_name(ext="xls")).write_bytes(dibao_xlsx(rows))
    (folder / roster_name()).write_bytes(dibao_xlsx([*rows, dibao_row(3)]))
    run = extract(folder, tmp_path)
    assert {o for o, _ in _outcomes(run).values()} == {"refused"}
    assert "claim the same version" in _outcomes(run)[roster_name()][1]
    assert _balanced(run)


def test_a_password_protected_xlsx_is_refused_as_such(folder: Path, tmp_path: Path):
    """An encrypted .xlsx is an OLE2 file with an EncryptedPackage stream: it is not called Excel 97-2003."""
    name = roster_name()
    (folder / name).write_bytes(ENCRYPTED)
    run = extract(folder, tmp_path)
    outcome, reason = _outcomes(run)[name]
    assert outcome == "refused" and "password-protected: ask for it without a password" in reason
    assert "97-2003" not in reason
    assert (run.count("dibao", "read"), run.count("dibao", "quarantined")) == (1, 1) and _balanced(run)


def test_the_xlsx_saved_as_correction_1_beside_a_refused_correction_xls_corrects_the_month(
    folder: Path, tmp_path: Path
):
    """_更正 and _更正1 are one version (the first correction) spelt two ways: a clerk who saves the refused
    _更正.xls as _更正1.xlsx has done what the refusal asked, and the .xlsx corrects the month."""
    base, xls, xlsx = (
        roster_name(),
        roster_name(correction="_更正", ext="xls"),
        roster_name(correction="_更正1"),
    )
    (folder / base).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    landed = extract(folder, tmp_path)
    (folder / xls).write_bytes(BIFF)
    (folder / xlsx).write_bytes(dibao_xlsx([dibao_row(1), dibao_row(2)]))
    run = extract(folder, tmp_path, landed.state)
    assert _outcomes(run)[xlsx] == ("landed", None)
    assert _outcomes(run)[xls][0] == "superseded" and _outcomes(run)[xls][1].startswith(
        f"superseded by {xlsx}"
    )
    assert run.deleted == ["dibao:202611:3"] and run.state["months"]["dibao:202611"]["file"] == xlsx
    assert _balanced(run)


def test_an_xls_beside_a_password_protected_xlsx_of_its_version_each_get_their_own_reason(
    folder: Path, tmp_path: Path
):
    """Neither can be read, so they cannot collide: the .xlsx is refused as password-protected (what the
    clerk must fix), the .xls as Excel 97-2003; not both as 'claiming the same version'."""
    xls, xlsx = roster_name(correction="_更正", ext="xls"), roster_name(correction="_更正")
    (folder / xls).write_bytes(BIFF)
    (folder / xlsx).write_bytes(ENCRYPTED)
    run = extract(folder, tmp_path)
    outcomes = _outcomes(run)
    assert (
        outcomes[xlsx][0] == "refused"
        and "password-protected: ask for it without a password" in outcomes[xlsx][1]
    )
    assert outcomes[xls][0] == "refused" and "Excel 97-2003" in outcomes[xls][1]
    assert not any("claim the same version" in reason for _, reason in outcomes.values())
    assert (run.count("dibao", "read"), run.count("dibao", "quarantined")) == (2, 2) and _balanced(run)
    assert run.state["months"] == {}
