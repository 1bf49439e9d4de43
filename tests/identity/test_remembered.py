"""Keys a rewind forgot are never lost: once their runs are reconciled again, a key no map carries any more
is an event with a redirect (`identity.remembered.lost`)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from islandbridge.identity import remembered, tables

REG, GRID, IOT = ("resident_registry", "t_jm:1"), ("grid_platform", "residents:GP1"), ("iot_platform", "H1")


@pytest.fixture
def con():
    with duckdb.connect() as con:
        tables.ensure_schema(con)
        con.executemany(
            "INSERT INTO meta.identity_keys_forgotten VALUES (?, ?, ?, ?)",
            [["r2", *REG, "pk_old"], ["r2", *GRID, "pk_old"], ["r3", *IOT, "pk_later"]],
        )
        yield con


def _map(rows: dict) -> pa.Table:
    """A map (system, record_key, person_key) of ``{(system, record_key): person_key}``."""
    columns = zip(*[(s, k, p) for (s, k), p in rows.items()], strict=True) if rows else ((), (), ())
    names = ("system", "record_key", "person_key")
    return pa.table({n: pa.array(list(c), pa.string()) for n, c in zip(names, columns, strict=True)})


NONE = _map({})


def test_a_forgotten_key_no_map_carries_is_redirected_to_where_its_records_went(con):
    new_map = _map({REG: "pk_new", GRID: "pk_new", IOT: "pk_later"})
    assert remembered.lost(con, "r2", new_map, NONE) == [("rekey", "pk_old", "pk_new")]


def test_a_forgotten_key_whose_records_are_gone_is_retired(con):
    assert remembered.lost(con, "r2", _map({IOT: "pk_later"}), NONE) == [("retire", "pk_old", None)]


def test_a_key_the_map_a_previous_map_or_a_later_forgotten_run_carries_is_not_lost(con):
    assert remembered.lost(con, "r2", _map({REG: "pk_old"}), NONE) == []
    assert remembered.lost(con, "r2", _map({REG: "pk_new"}), _map({GRID: "pk_old"})) == []
    assert remembered.lost(con, "r1", _map({REG: "pk_new"}), NONE) == []  # r2 not reconciled yet


def test_hints_come_from_the_earliest_forgotten_run_at_or_after_the_run(con):
    records = _map({REG: "x", IOT: "y", ("grid_platform", "new"): "z"}).select(["system", "record_key"])
    assert remembered.hints(con, "r1", records).to_pylist() == ["pk_old", "pk_later", None]
    assert remembered.hints(con, "r3", records).to_pylist() == [None, "pk_later", None]
    remembered.forget(con, "r3")
    assert remembered.hints(con, "r1", records) is None
