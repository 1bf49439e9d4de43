"""The gate over a file-based source's outcomes: a refused roster file and a roster column the SPEC does
not name are warnings (named in the sync summary and the report), never silence."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from islandbridge.pipeline import load_settings
from islandbridge.quality.report import render

from .conftest import Workspace

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
