"""The gate over a file-based source's outcomes: a refused roster file and a roster column the SPEC does
not name are warnings (named in the sync summary and the report), never silence."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from islandbridge.config import parse_as_of
from islandbridge.pipeline import load_settings, run
from islandbridge.quality.report import render

from .conftest import LOADED_AT, Workspace

DAY = "2026-11-20"
BIFF = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024  # an Excel 97-2003 (OLE2) file's first bytes


def _with_remark(path: Path) -> None:
    """The 高龄补贴 CSV with a 备注 column appended, holding free text in every data row."""
    lines = path.read_bytes().decode("gb18030").split("\r\n")
    body = [f"{line},住院中" if line and not line.startswith("合计") else line for line in lines[1:]]
    path.write_bytes("\r\n".join([f"{lines[0]},备注", *body]).encode("gb18030"))


def test_a_refused_correction_and_an_unknown_column_are_gate_warnings(
    tmp_path, served_street, quarantine_keys
):
    street, grid_url, iot_url = served_street
    ws = Workspace(tmp_path / "ws", street, grid_url, iot_url, quarantine_keys)
    folder = tmp_path / "civil"
    shutil.copytree(street / "civil", folder)
    correction = next(folder.glob("*_202611_低保_更正.xlsx"))
    correction.unlink()
    xls = correction.with_suffix(".xls")
    xls.write_bytes(BIFF)
    _with_remark(next(folder.glob("*_202611_高龄补贴.csv")))
    body = yaml.safe_load(ws.config.read_text(encoding="utf-8"))
    body["sources"]["civil"]["path"] = str(folder)
    ws.config.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    ws.settings = load_settings(ws.config, ws.environ)

    ws.extract(DAY, ["civil"])
    gate = ws.gate(DAY, ["civil"])

    assert gate.passed, "warnings do not stop the run"
    warned = {r.name: r for r in gate.warnings}
    assert sorted(warned) == ["civil.dibao.source_files_read", "civil.senior.unknown_columns"]
    refused = warned["civil.dibao.source_files_read"].observed["refused"]
    assert [f["file"] for f in refused] == [xls.name] and "save it as .xlsx" in refused[0]["reason"]
    # a first run: the original was never landed, and a refused correction does not let it stand in
    assert warned["civil.dibao.source_files_read"].observed["kept_instead"] == []
    assert dict(warned["civil.senior.unknown_columns"].observed["not_read"]) == {
        next(folder.glob("*_202611_高龄补贴.csv")).name: ["备注"]
    }
    page = render(gate)
    assert xls.name in page and "备注" in page and "住院中" not in page
    assert "civil.dibao.source_files_read" in gate.to_dict()["warnings"]


def _typed_into_headers(folder: Path) -> None:
    """A clerk's typing in two headers: a name heads an extra 高龄补贴 column; a phone takes the place of
    所属社区 in the 低保 correction (so that file's header misses a column and it is refused)."""
    senior = next(folder.glob("*_202611_高龄补贴.csv"))
    lines = senior.read_bytes().decode("gb18030").split("\r\n")
    body = [f"{line},x" if line and not line.startswith("合计") else line for line in lines[1:]]
    senior.write_bytes("\r\n".join([f"{lines[0]},王芳代领", *body]).encode("gb18030"))
    correction = next(folder.glob("*_202611_低保_更正.xlsx"))
    book = openpyxl.load_workbook(correction)
    for row in book.active.iter_rows():
        for cell in row:
            if cell.value == "所属社区":
                cell.value = "联系13800138000"
    book.save(correction)


def _texts(root: Path) -> Iterator[str]:
    """Every text the run left under ``root``: text files, Parquet string cells, workbook cells."""
    for path in sorted(
        p for p in root.rglob("*") if p.is_file() and not {"secrets", "private"} & set(p.parts)
    ):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for column in table.columns:
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    yield from (v for v in column.to_pylist() if v)
        elif path.suffix == ".xlsx":
            for sheet in openpyxl.load_workbook(path, read_only=True).worksheets:
                yield from (str(v) for row in sheet.iter_rows(values_only=True) for v in row if v)
        elif path.suffix not in (".duckdb", ".wal", ".keys", ".key"):
            yield path.read_bytes().decode("utf-8", errors="replace")


def _warehouse_texts(ws: Workspace) -> Iterator[str]:
    with ws.warehouse() as con:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR'"
        ).fetchall()
        for schema, table, column in columns:
            rows = con.execute(f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}"').fetchall()
            yield from (v for (v,) in rows if v)


def test_text_typed_into_a_roster_header_is_nowhere_after_a_whole_run(
    tmp_path, served_street, quarantine_keys
):
    """A name and a phone typed as header cells reach no manifest, state, reason, meta table, quality
    report or export: such a column is described by position and size only."""
    street, grid_url, iot_url = served_street
    ws = Workspace(tmp_path / "ws", street, grid_url, iot_url, quarantine_keys)
    folder = tmp_path / "civil"
    shutil.copytree(street / "civil", folder)
    _typed_into_headers(folder)
    body = yaml.safe_load(ws.config.read_text(encoding="utf-8"))
    body["sources"]["civil"]["path"] = str(folder)
    body["quality"] = {"checks": {"civil.dibao.quarantine_share": {"severity": "warning"}}}
    ws.config.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    ws.settings = load_settings(ws.config, ws.environ)

    summary = run.sync(ws.settings, parse_as_of(DAY), clock=lambda: LOADED_AT)

    warned = summary["quality"]["warnings"]
    assert {"civil.dibao.source_files_read", "civil.senior.unknown_columns"} <= set(warned)
    assert list((ws.root / "warehouse" / "reports").rglob("*.html")), "the quality report was written"
    joined = "\n".join([*_texts(ws.root), *_warehouse_texts(ws)])
    for typed in ("王芳代领", "13800138000"):
        assert typed not in joined
    assert "column 11 (4 characters)" in joined
    notes = "\n".join(_texts(ws.root / "exports"))
    assert "column 11 (13 characters)" in notes, "the refusal, as the department export notes say it"
