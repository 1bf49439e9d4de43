"""The gate's roster_totals check per landed file, when two months' files are byte-identical (#15)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from islandbridge.landing.zone import QUARANTINE_SCHEMA
from islandbridge.quality.tablechecks import roster_totals

SHA = "ab" * 32
NOV, DEC = "511403001_202611_高龄补贴.csv", "511403001_202612_高龄补贴.csv"


def test_identical_files_of_two_months_are_checked_each_on_its_own():
    """Both months landed in one run from the same bytes: each file accounts for its own rows."""
    landed = pa.table(
        {
            "source_file": [NOV, NOV, DEC, DEC],
            "file_sha256": [SHA] * 4,
            "roster_month": ["202611", "202611", "202612", "202612"],
            "发放金额": ["100", "100", "100", "100"],
        }
    )
    state = {
        "version": 2,
        "files": {
            f"senior:{m}:{SHA}": {"file": f, "stream": "senior", "month": m, "rows": 2, "sha": SHA}
            for m, f in (("202611", NOV), ("202612", DEC))
        },
    }
    con = duckdb.connect()
    con.register("landed", landed)
    result = roster_totals(
        con, "landed", "senior", state, QUARANTINE_SCHEMA.empty_table(), None, ["发放金额"], []
    )
    assert result.select(["file", "rows_in_file", "rows_accounted", "sum_landed_0"]).to_pylist() == [
        {"file": NOV, "rows_in_file": 2, "rows_accounted": 2, "sum_landed_0": "200.0000"},
        {"file": DEC, "rows_in_file": 2, "rows_accounted": 2, "sum_landed_0": "200.0000"},
    ]
