"""The warehouse's ``<id column>__kind`` follows the spreadsheet rule for the civil rosters (#15)."""

from __future__ import annotations

import pyarrow as pa

from islandbridge.privacy.scrub import Scrubber
from islandbridge.privacy.sealing import stream_privacy, warehouse_batch
from islandbridge.schemas import RECORD_KEY

NUMBER = "360102200210121000"  # passes the check digit; what Excel leaves of a number cell


def _kinds(kind: str, stream: str, column: str) -> tuple[str, str | None]:
    columns = [column, RECORD_KEY]
    spec = stream_privacy(kind, stream, columns)
    batch = pa.record_batch({column: [NUMBER], RECORD_KEY: ["k:1"]})
    out = warehouse_batch(batch, spec, [column], Scrubber())
    return out[column + "__kind"][0].as_py(), out[column + "__birth_date"][0].as_py()


def test_a_roster_id_ending_in_000_is_damage_and_states_no_birth_date():
    assert _kinds("civil_files", "senior", "身份证号") == ("excel_damaged", None)
    assert _kinds("civil_files", "dibao", "身份证号码") == ("excel_damaged", None)


def test_a_registry_id_ending_in_000_is_still_an_id():
    assert _kinds("sql_registry", "t_jm", "sfzh") == ("full", "2002-10-12")
