"""The civil-affairs roster connector: versions, hashes, totals, quirks kept, hostile files given reasons."""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq
import pytest

from islandbridge.config import SourceSettings, parse_as_of
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.errors import ConfigError, FatalSourceError
from islandbridge.landing.zone import LandingWriter, to_text

from .hostile import (
    CORPUS,
    Hostile,
    dibao_row,
    dibao_xlsx,
    roster_name,
    senior_csv,
    senior_row,
)

AS_OF = parse_as_of("2026-11-20")
_runs = itertools.count(1)


@dataclass
class Run:
    manifest: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]
    quarantine: list[dict[str, Any]]
    deleted: list[str]

    @property
    def state(self) -> dict[str, Any]:
        return self.manifest["state"]

    def count(self, stream: str, what: str) -> int:
        return self.manifest["streams"][stream][what]


def extract(folder: Path, tmp_path: Path, state: dict | None = None, **options: Any) -> Run:
    """One extraction into a real landing writer (which checks the accounting on close)."""
    connector = build_connector(SourceSettings("civil", "civil_files", {"path": str(folder), **options}))
    run_id = f"run{next(_runs)}"
    url = (tmp_path / "landing").as_uri()
    writer = LandingWriter.open(url, run_id, "civil", connector.streams())
    manifest = writer.close(connector.extract(ExtractContext(run_id, AS_OF, state or {}, writer)))
    base = tmp_path / "landing" / run_id / "civil"
    rows = {s.name: _read(base / s.name) for s in connector.streams()}
    deleted = [r["_record_key"] for r in _read(base / "_deleted")]
    return Run(manifest, rows, _read(base / "_quarantine"), deleted)


def _read(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist() if path.exists() else []


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "civil"
    path.mkdir()
    return path


# --------------------------------------------------------------------------- the generated street


def _oracle(path: Path) -> list[tuple[int, list[Any]]]:
    """The data rows of a well-formed roster, read independently: after the 序号 header, up to 合计."""
    if path.suffix == ".xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True, data_only=True).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
    else:
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("gb18030"), newline="")))
    start = next(i for i, r in enumerate(rows) if r and r[0] == "序号")
    end = next(i for i, r in enumerate(rows) if r and r[0] == "合计")
    return [
        (i + 1, list(rows[i])) for i in range(start + 1, end) if any(c not in (None, "") for c in rows[i])
    ]


def _newest(folder: Path) -> list[Path]:
    groups: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        match = re.fullmatch(r"(\d+_\d{6}_[^_.]+)(?:_更正(\d*))?\.\w+", path.name)
        rank = 0 if "_更正" not in path.name else int(match[2] or 1)
        best = groups.get(match[1])
        if best is None or rank > best[0]:
            groups[match[1]] = (rank, path)
    return [path for _, path in groups.values()]


def test_street_lands_every_data_row_of_the_newest_versions(street_dir: Path, tmp_path: Path):
    """Every data row of each month's newest file is landed once; nothing from superseded files."""
    civil = street_dir / "civil"
    run = extract(civil, tmp_path)
    landed = {(r["source_file"], r["source_row"]) for s in run.rows.values() for r in s}
    expected = {(p.name, str(n)) for p in _newest(civil) for n, _ in _oracle(p)}
    assert landed == expected
    assert sum(len(s) for s in run.rows.values()) == len(expected)
    assert not run.quarantine
    superseded = set(run.state["superseded"])
    assert superseded == {p.name for p in civil.iterdir()} - {p.name for p in _newest(civil)}


def test_street_record_keys_and_no_totals_row(street_dir: Path, tmp_path: Path):
    """Record keys read ``dibao:YYYYMM:<序号>``; the 合计 row is never landed."""
    run = extract(street_dir / "civil", tmp_path)
    for stream, rows in run.rows.items():
        assert rows, stream
        for row in rows:
            assert re.fullmatch(rf"{stream}:\d{{6}}:\d+", row["_record_key"])
            assert row["_record_key"] == f"{stream}:{row['roster_month']}:{row['序号']}"
            assert "合计" not in row.values()


def test_street_ids_land_exactly_as_in_the_file(street_dir: Path, tmp_path: Path):
    """Excel-damaged IDs (floats, 5.11403E+17 text) and apostrophes are landed as the file has them."""
    civil = street_dir / "civil"
    run = extract(civil, tmp_path)
    cells = {}
    for path in _newest(civil):
        for number, row in _oracle(path):
            cells[(path.name, str(number))] = to_text(row[2] if path.suffix == ".xlsx" else row[3])
    landed = {
        (r["source_file"], r["source_row"]): r.get("身份证号码") or r.get("身份证号")
        for rows in run.rows.values()
        for r in rows
    }
    assert landed == cells
    assert any("e+" in v.lower() for v in landed.values() if v), "the street has Excel-damaged IDs"


def test_street_second_run_lands_nothing(street_dir: Path, tmp_path: Path):
    """Re-running over the same folder counts every row as a duplicate."""
    first = extract(street_dir / "civil", tmp_path)
    second = extract(street_dir / "civil", tmp_path, first.state)
    for stream in ("dibao", "senior"):
        assert second.count(stream, "landed") == 0
        assert second.count(stream, "duplicates") == first.count(stream, "landed")


# --------------------------------------------------------------------------- versions and hashes


def test_correction_supersedes_the_base_in_one_run(folder: Path, tmp_path: Path):
    """With base and _更正 both present only the correction lands; the base is noted as superseded."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in range(1, 6)]))
    (folder / roster_name(correction="_更正")).write_bytes(
        dibao_xlsx([dibao_row(i, amount=900) for i in (1, 2)])
    )
    run = extract(folder, tmp_path)
    assert {r["source_file"] for r in run.rows["dibao"]} == {roster_name(correction="_更正")}
    assert [r["_record_key"] for r in run.rows["dibao"]] == ["dibao:202611:1", "dibao:202611:2"]
    assert run.state["superseded"] == {roster_name(): roster_name(correction="_更正")}
    assert run.count("dibao", "read") == 2


def test_later_correction_replaces_the_month_and_reports_vanished_keys(folder: Path, tmp_path: Path):
    """A correction arriving after the base was landed lands whole; keys it lacks are deletions."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in range(1, 6)]))
    first = extract(folder, tmp_path)
    (folder / roster_name(correction="_更正2")).write_bytes(
        dibao_xlsx([dibao_row(i, amount=7) for i in (1, 2, 3)])
    )
    second = extract(folder, tmp_path, first.state)
    assert second.count("dibao", "landed") == 3
    assert second.deleted == ["dibao:202611:4", "dibao:202611:5"]
    assert second.state["superseded"] == {roster_name(): roster_name(correction="_更正2")}


def test_an_older_version_never_replaces_a_newer_one_landed_before(folder: Path, tmp_path: Path):
    """If only the base is left after its correction was landed, the base is still superseded."""
    correction = folder / roster_name(correction="_更正")
    correction.write_bytes(dibao_xlsx([dibao_row(1)]))
    first = extract(folder, tmp_path)
    correction.unlink()
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2)]))
    second = extract(folder, tmp_path, first.state)
    assert second.count("dibao", "read") == 0
    assert second.state["superseded"] == {roster_name(): roster_name(correction="_更正")}


def test_same_file_again_lands_nothing_but_the_same_bytes_for_another_month_do(folder: Path, tmp_path: Path):
    """A month's file is landed once by content; a byte-identical file of *another* month is that month's
    roster (a 高龄补贴 CSV has no month column and often does not change) and lands."""
    base = folder / roster_name()
    base.write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    first = extract(folder, tmp_path)
    again = extract(folder, tmp_path, first.state)
    assert (again.count("dibao", "landed"), again.count("dibao", "duplicates")) == (0, 3)
    shutil.copy(base, folder / roster_name(month="202612"))
    next_month = extract(folder, tmp_path, again.state)
    assert (next_month.count("dibao", "landed"), next_month.count("dibao", "duplicates")) == (3, 3)
    assert {r["_record_key"] for r in next_month.rows["dibao"]} == {f"dibao:202612:{i}" for i in (1, 2, 3)}


def test_a_file_landed_before_is_said_unchanged_and_a_renamed_copy_names_the_original(
    folder: Path, tmp_path: Path, caplog
):
    """Read again, the landed file is 'unchanged since it landed in run X', not 'the same content as'
    itself; a correction with the very same bytes names the file and the run it repeats."""
    caplog.set_level(logging.INFO)
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2)]))
    first = extract(folder, tmp_path)
    caplog.clear()
    again = extract(folder, tmp_path, first.state)
    (line,) = [r.getMessage() for r in caplog.records if roster_name() in r.getMessage()]
    landed_in = next(iter(first.state["files"].values()))["run"]
    assert f"unchanged since it landed in run {landed_in} for 202611" in line
    assert "same content" not in line
    caplog.clear()
    shutil.copy(folder / roster_name(), folder / roster_name(correction="_更正"))
    extract(folder, tmp_path, again.state)
    (line,) = [r.getMessage() for r in caplog.records if "duplicate row" in r.getMessage()]
    assert (
        f"{roster_name(correction='_更正')}: the same content as {roster_name()}, landed in run {landed_in}"
        in line
    )


def _senior_xlsx(rows: list) -> bytes:
    """The 高龄补贴 CSV's lines as a workbook."""
    book = openpyxl.Workbook()
    for line in senior_csv(rows).decode("gb18030").splitlines():
        book.active.append(line.split(","))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_two_files_claiming_one_version_are_both_rejected(folder: Path, tmp_path: Path):
    """An .xlsx and a .csv of the same version, both readable, would collide on record keys: neither is
    landed (only an unreadable one yields to a readable one, test_civil_formats)."""
    (folder / roster_name("高龄补贴", ext="csv")).write_bytes(senior_csv([senior_row(1)]))
    (folder / roster_name("高龄补贴", ext="xlsx")).write_bytes(_senior_xlsx([senior_row(1), senior_row(2)]))
    run = extract(folder, tmp_path)
    assert run.count("senior", "landed") == 0
    assert {q["_record_key"] for q in run.quarantine} == {
        f"file:{roster_name('高龄补贴', ext=e)}" for e in ("csv", "xlsx")
    }


# --------------------------------------------------------------------------- totals and quirks


def test_totals_mismatch_rejects_the_whole_file(folder: Path, tmp_path: Path):
    """A 合计 that disagrees with the rows quarantines every row with the reason; nothing lands."""
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)], total=99))
    run = extract(folder, tmp_path)
    assert run.count("dibao", "landed") == 0
    assert run.count("dibao", "quarantined") == run.count("dibao", "read") == 3
    assert {q["_record_key"] for q in run.quarantine} == {
        "dibao:202611:1",
        "dibao:202611:2",
        "dibao:202611:3",
    }
    assert all("合计 row states 99" in q["reason"] for q in run.quarantine)
    assert run.state["files"] == {}, "a rejected file is tried again next run"


def test_missing_totals_row_is_a_truncated_file(folder: Path, tmp_path: Path):
    (folder / roster_name("高龄补贴", ext="csv")).write_bytes(
        senior_csv([senior_row(1), senior_row(2)], total=None)
    )
    run = extract(folder, tmp_path)
    assert run.count("senior", "landed") == 0
    assert [q["reason"] for q in run.quarantine] == ["no 合计 totals row: the file may be truncated"] * 2


def test_totals_are_checked_in_decimal(folder: Path, tmp_path: Path):
    """0.1 + 0.2 equals 0.3 in yuan, although not in binary floating point."""
    rows = [dibao_row(1, amount=0.1), dibao_row(2, amount=0.2)]
    (folder / roster_name()).write_bytes(dibao_xlsx(rows, total="0.3"))
    run = extract(folder, tmp_path)
    assert run.count("dibao", "landed") == 2
    assert [r["月保障金(元)"] for r in run.rows["dibao"]] == ["0.1", "0.2"]


def test_excel_quirks_land_as_they_came(folder: Path, tmp_path: Path):
    """Float IDs, E+17 text, a leading apostrophe and padded names are landed untouched, never repaired."""
    (folder / roster_name()).write_bytes(
        dibao_xlsx(
            [
                dibao_row(1, sfzh=4.201021959100794e17, name="陈  佳"),
                dibao_row(2, sfzh="'511403194401187954", name="王婷 "),
            ]
        )
    )
    (folder / roster_name("高龄补贴", ext="csv")).write_bytes(senior_csv([senior_row(1, sfzh="5.11403E+17")]))
    run = extract(folder, tmp_path)
    dibao = {r["序号"]: r for r in run.rows["dibao"]}
    assert dibao["1"]["身份证号码"] == "4.201021959100794e+17"
    assert dibao["1"]["户主姓名"] == "陈  佳"
    assert dibao["2"]["身份证号码"] == "'511403194401187954"
    assert dibao["2"]["户主姓名"] == "王婷 "
    assert run.rows["senior"][0]["身份证号"] == "5.11403E+17"


def test_rows_carry_their_file_and_row_number(folder: Path, tmp_path: Path):
    data = dibao_xlsx([dibao_row(1)])
    (folder / roster_name()).write_bytes(data)
    row = extract(folder, tmp_path).rows["dibao"][0]
    assert (row["roster_month"], row["source_file"], row["source_row"]) == ("202611", roster_name(), "4")
    assert len(row["file_sha256"]) == 64


def test_utf8_csv_is_read_too(folder: Path, tmp_path: Path):
    """Encoding is detected, not assumed: a UTF-8 export of the senior roster reads the same."""
    (folder / roster_name("高龄补贴", ext="csv")).write_bytes(senior_csv([senior_row(1)], encoding="utf-8"))
    assert extract(folder, tmp_path).rows["senior"][0]["姓名"] == "长者1"


def test_repeated_or_missing_serial_quarantines_that_row(folder: Path, tmp_path: Path):
    rows = [dibao_row(1), dibao_row(1), ["", *dibao_row(3)[1:]]]
    (folder / roster_name()).write_bytes(dibao_xlsx(rows))
    run = extract(folder, tmp_path)
    assert run.count("dibao", "landed") == 1
    reasons = sorted(q["reason"] for q in run.quarantine)
    assert reasons == ["序号 1 repeats row 4", "序号 is empty: the row has no record key"]


# --------------------------------------------------------------------------- hostile files


@pytest.mark.timeout(30)
@pytest.mark.parametrize("hostile", CORPUS, ids=[h.kind for h in CORPUS])
def test_hostile_file_gets_a_reason(hostile: Hostile, folder: Path, tmp_path: Path, caplog):
    """Each hostile file yields a clear reason where the corpus says, never an exception or a hang."""
    hostile.build(folder, hostile.name)
    with caplog.at_level(logging.INFO):
        run = extract(folder, tmp_path, **hostile.options)
    if hostile.where == "ignored":
        assert hostile.reason in run.state["ignored"][hostile.name]
        assert not run.quarantine
    elif hostile.where == "file":
        assert [q["_record_key"] for q in run.quarantine] == [f"file:{hostile.name}"]
        assert hostile.reason in run.quarantine[0]["reason"]
    elif hostile.where == "all":
        assert sum(len(rows) for rows in run.rows.values()) == 0
        assert run.quarantine and all(hostile.reason in q["reason"] for q in run.quarantine)
    else:
        assert run.quarantine and all(hostile.reason in q["reason"] for q in run.quarantine)
        assert sum(len(rows) for rows in run.rows.values()) >= 2, "the well-formed rows still land"
    assert "outside-secret" not in caplog.text
    outcomes = {f["file"]: f for f in run.manifest["files"]}
    assert outcomes[hostile.name]["outcome"] in ("landed", "refused", "ignored")
    if hostile.where != "row":
        assert hostile.reason in outcomes[hostile.name]["reason"]


def test_no_personal_data_in_logs(folder: Path, tmp_path: Path, caplog):
    """Logs name files and counts, never a name or an ID from the rows."""
    (folder / roster_name()).write_bytes(
        dibao_xlsx([dibao_row(1, name="隐私甲", sfzh="511403198001019999")], total=5)
    )
    with caplog.at_level(logging.DEBUG):
        extract(folder, tmp_path)
    assert "隐私甲" not in caplog.text and "511403198001019999" not in caplog.text


def test_other_streets_are_ignored_when_street_code_is_set(folder: Path, tmp_path: Path):
    (folder / "511403002_202611_低保.xlsx").write_bytes(dibao_xlsx([dibao_row(1)]))
    run = extract(folder, tmp_path, street_code="511403001")
    assert "street 511403002" in run.state["ignored"]["511403002_202611_低保.xlsx"]


def test_missing_folder_is_fatal(tmp_path: Path):
    with pytest.raises(FatalSourceError, match="cannot list the roster folder"):
        extract(tmp_path / "not-mounted", tmp_path)


def test_bad_options_fail_when_built():
    with pytest.raises(ConfigError, match="max_file_mb.*max_rows|max_rows"):
        build_connector(
            SourceSettings("civil", "civil_files", {"path": "x", "max_file_mb": -1, "max_rows": "many"})
        )
