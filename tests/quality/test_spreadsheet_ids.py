"""The gate's id_valid check follows the spreadsheet rule on the civil rosters (#15 item 6)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from islandbridge.config import parse_as_of
from islandbridge.quality.rowchecks import CheckContext, run_row_checks
from islandbridge.schemas import RECORD_KEY, load_tables

NUMBER = "360102200210121000"  # passes the check digit; what Excel leaves of an ID in a number cell


def _unexpected(kind: str, stream: str, column: str) -> int:
    table = load_tables()[kind, stream]
    checks = [c for c in table.suite if c.kind == "id_valid"]
    values = {c: [NUMBER if c == column else "1"] for c in table.column_names}
    rows = pa.table({**values, RECORD_KEY: ["k:1"]})
    found = run_row_checks(
        duckdb.connect(), rows, table, checks, CheckContext(parse_as_of("2026-11-20")), {}, want_frame=False
    )
    return found.counts[checks[0].id].unexpected_count


def test_a_roster_id_ending_in_000_fails_id_valid_but_a_registry_one_passes():
    assert _unexpected("civil_files", "senior", "身份证号") == 1
    assert _unexpected("sql_registry", "t_jm", "sfzh") == 0
