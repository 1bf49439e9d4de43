"""Every row-level expectation of every table fails on the simulated street's landed rows with its own
defect injected (and passes on them as landed: see test_gate's clean street), in GX and in DuckDB."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from islandbridge.config import parse_as_of
from islandbridge.quality import suites
from islandbridge.quality.rowchecks import DERIVED_KINDS, CheckContext, check_landed, land, run_row_checks
from islandbridge.quality.slices import LandingSlice
from islandbridge.quality.validation import read_columns
from islandbridge.schemas import Check, load_tables

DAY = "2026-11-20"
RUN = "ib_20261120T160000Z"
SOURCES = {"sql_registry": "registry", "grid_rest": "grid", "civil_files": "civil", "iot_rest": "iot"}
TABLES = sorted(load_tables())


def _violate(check: Check, rows: list[dict], i: int) -> None:
    """Inject the defect ``check`` must catch into row ``i`` (into every row, for a ``mostly`` ratio)."""
    p, col = check.params, check.column
    if check.kind == "unique":
        rows.append(dict(rows[i]))
    elif check.mostly is not None:  # a ratio: spoil every row so that it falls below ``mostly``
        for row in rows:
            row[col] = "110101199003070018" if check.kind == "id_valid" else "call me"
    elif check.kind == "pair_equal":
        rows[i][p["columns"][0]] = "mismatch"
    elif check.kind == "date_between":
        rows[i][col] = dt.datetime(2999, 1, 1).strftime(p["formats"][0])
    elif check.kind == "number_between":
        rows[i][col] = str(p["max"] * 10 + 1)
    else:
        rows[i][col] = {
            "not_null": None,
            "in_set": "__unknown__",
            "regex": "!!",
            "date_format": "not a date",
            "epoch_ms_between": "0",
            "exists_in": "NOPE-404",
            "no_identifier": "13800138000",  # a phone typed into a roster's 序号
        }[check.kind]


@pytest.fixture(scope="module")
def landed(clean):
    ws, _ = clean
    ws.extract(DAY)  # the sync deleted its landed extract after loading it: land the same day again
    slices = {source: LandingSlice.open(ws.settings.landing_url, RUN, source) for source in SOURCES.values()}
    return lambda kind, stream: slices[SOURCES[kind]].dataset(stream).to_table()


def _defective(landed, kind_stream):
    """The stream's landed rows with each row-level check's defect injected, and those checks."""
    table = load_tables()[kind_stream]
    checks = [c for c in table.suite if c.is_row_level]
    rows = landed(*kind_stream)
    if rows.num_rows <= len(checks):
        pytest.skip(f"{table.stream} landed too few rows on this street to give each check its own")
    defective = rows.to_pylist()
    for i, check in enumerate(checks):
        _violate(check, defective, i)
    con = duckdb.connect()
    refs = {}
    for n, check in enumerate(c for c in checks if c.kind == "exists_in"):
        con.register("_ref_rows", landed(kind_stream[0], check.params["ref"]["stream"]))
        con.execute(f'CREATE TABLE _ref{n} AS SELECT "{check.params["ref"]["column"]}" AS k FROM _ref_rows')
        refs[check.id] = f"_ref{n}"
    return con, table, checks, pa.Table.from_pylist(defective, rows.schema), refs


@pytest.mark.parametrize("kind_stream", TABLES, ids=[".".join(t) for t in TABLES])
def test_each_expectation_fails_with_its_defect_injected(landed, kind_stream):
    con, table, checks, rows, refs = _defective(landed, kind_stream)
    ctx = CheckContext(parse_as_of(DAY))
    found = run_row_checks(
        con,
        rows,
        table,
        checks,
        ctx,
        refs,
        gx_columns=[x for c in checks if c.kind not in DERIVED_KINDS for x in c.columns],
    )
    gx = {
        r["check"]: r
        for r in suites.validate(
            found.frame, [suites.expectation(c, ctx) for c in checks], ".".join(kind_stream)
        )
    }
    for check in checks:
        assert not gx[check.id]["success"], check.id
        assert found.counts[check.id].unexpected_count == gx[check.id]["result"]["unexpected_count"] > 0, (
            check.id
        )


@pytest.mark.parametrize("kind_stream", TABLES, ids=[".".join(t) for t in TABLES])
def test_checks_over_a_landed_dataset_copied_into_duckdb_find_what_they_find_in_arrow(
    landed, kind_stream, tmp_path
):
    """The gate's path (only the read columns in DuckDB, the rest fetched from the Parquet parts by row
    number) gives the same counts, samples, failing rows in the same order, and GX frame."""
    con, table, checks, rows, refs = _defective(landed, kind_stream)
    third = rows.num_rows // 3 + 1
    for n in range(3):  # several parts: row numbers run across them in the dataset's order
        pq.write_table(rows.slice(n * third, third), tmp_path / f"part-{n:05d}.parquet")
    dataset = pads.dataset(tmp_path, format="parquet")
    ctx = CheckContext(parse_as_of(DAY))
    gx_columns = [x for c in checks if c.kind not in DERIVED_KINDS for x in c.columns]
    in_arrow = run_row_checks(con, dataset.to_table(), table, checks, ctx, refs, gx_columns=gx_columns)
    assert land(con, dataset, read_columns(checks)) == rows.num_rows
    in_duckdb = check_landed(con, dataset, table, checks, ctx, refs, gx_columns=gx_columns)
    assert in_duckdb.failing.num_rows > 0
    assert in_duckdb.failing.equals(in_arrow.failing, check_metadata=True)
    assert in_duckdb.frame.equals(in_arrow.frame, check_metadata=True)
    assert (in_duckdb.rows, in_duckdb.counts, in_duckdb.samples, in_duckdb.top_values) == (
        in_arrow.rows,
        in_arrow.counts,
        in_arrow.samples,
        in_arrow.top_values,
    )
