"""A roster header a clerk typed into: text that is not a SPEC column (a name, a phone) is never repeated
in the manifest, the state, a refusal or the logs; such a column is described by position and size."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from .hostile import DIBAO_HEADER, dibao_row, dibao_xlsx, roster_name, senior_csv, senior_row
from .test_civil_files import extract
from .test_civil_formats import _with_column
from .test_civil_refusals import _outcomes

TYPED = ("王芳代领", "联系13800138000")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "civil"
    path.mkdir()
    return path


def _said(run, caplog) -> str:
    """Everything the extraction said about the files: manifest (with state), reasons, logs."""
    reasons = [q["reason"] for q in run.quarantine]
    return json.dumps([run.manifest, reasons], ensure_ascii=False) + caplog.text


@pytest.mark.parametrize("typed", TYPED)
def test_an_extra_header_cell_is_described_not_repeated(folder: Path, tmp_path: Path, caplog, typed: str):
    """The file lands by the SPEC's columns; the extra column is 'column 11 (N characters)' everywhere."""
    name = roster_name("高龄补贴", ext="csv")
    (folder / name).write_bytes(_with_column(senior_csv([senior_row(1), senior_row(2)]), typed, "x"))
    with caplog.at_level(logging.DEBUG):
        run = extract(folder, tmp_path)
    assert (run.count("senior", "read"), run.count("senior", "landed")) == (2, 2)
    described = f"column 11 ({len(typed)} characters)"
    assert run.state["unknown_columns"] == {name: [described]}
    assert _outcomes(run)[name] == (
        "landed",
        f"1 column not in the SPEC not read (its values are not landed): {described}",
    )
    assert typed not in _said(run, caplog) and "13800138000" not in _said(run, caplog)


@pytest.mark.parametrize("typed", TYPED)
def test_a_refused_header_names_the_missing_column_and_describes_the_extra(
    folder: Path, tmp_path: Path, caplog, typed: str
):
    """A header missing 所属社区 with a typed cell in its place: every row quarantined with a reason that
    names the SPEC's missing column and the extra one by position only."""
    name = roster_name()
    header = [*DIBAO_HEADER[:-1], typed]
    (folder / name).write_bytes(dibao_xlsx([dibao_row(1), dibao_row(2)], header=header))
    with caplog.at_level(logging.DEBUG):
        run = extract(folder, tmp_path)
    assert (run.count("dibao", "read"), run.count("dibao", "quarantined")) == (2, 2)
    assert run.count("dibao", "landed") + run.count("dibao", "duplicates") == 0
    reason = _outcomes(run)[name][1]
    assert f"missing column 所属社区; 1 column not in the SPEC: column 11 ({len(typed)} characters)" in reason
    assert {q["reason"] for q in run.quarantine} == {reason}
    assert typed not in _said(run, caplog) and "13800138000" not in _said(run, caplog)


def test_a_harmless_header_word_is_named(folder: Path, tmp_path: Path):
    """备注, 说明 and 备注说明 are named as typed: they say what the column is and hold no one's data."""
    name = roster_name("高龄补贴", ext="csv")
    data = _with_column(_with_column(senior_csv([senior_row(1)]), "说明", "a"), "备注说明", "b")
    (folder / name).write_bytes(data)
    assert extract(folder, tmp_path).state["unknown_columns"] == {name: ["说明", "备注说明"]}
