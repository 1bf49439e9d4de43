"""`islandbridge eval reports` warns when the marts hold another day than the truth was written for."""

from __future__ import annotations

import datetime as dt
import json

import duckdb

from islandbridge.devtools.reports_eval import day_mismatch


def _con(as_of: str | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if as_of is not None:
        con.execute("CREATE SCHEMA meta; CREATE TABLE meta.marts_current (run_id VARCHAR, as_of TIMESTAMPTZ)")
        con.execute("INSERT INTO meta.marts_current VALUES ('ib_x', ?)", [dt.datetime.fromisoformat(as_of)])
    return con


def test_marts_of_a_later_day_than_the_truth_are_named(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"t_end": "2026-11-21T00:00:00+08:00"}), encoding="utf-8")
    why = day_mismatch(_con("2026-11-22T16:00:00+00:00"), tmp_path)
    assert why and "ib_x" in why and "2026-11-21T00:00:00+08:00" in why
    assert day_mismatch(_con("2026-11-20T16:00:00+00:00"), tmp_path) is None
    assert day_mismatch(_con(None), tmp_path) is None


def test_a_truth_folder_without_its_meta_file_is_refused_in_one_line(tmp_path, capsys):
    from islandbridge.cli import main

    (tmp_path / "persons.csv").write_text("person_id\n", encoding="utf-8")
    assert main(["eval", "reports", "--config", str(tmp_path / "none.yml"), "--truth", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no truth files (meta.json)" in err and "Traceback" not in err
