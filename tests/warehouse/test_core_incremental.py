"""The residency history kept by changed keys (issue #17): a daily build equals a full one, row for row.

Each case builds T1, changes what a residency row joins (not the row itself) or adds a version, builds T2
by changed keys, and then builds T2 again with ``full=True``: the tables must be the same, in the same
physical order. Without the join's change detected, the kept row would be stale and the case would fail.
"""

from __future__ import annotations

import datetime as dt

import pytest

from islandbridge.landing import raw
from islandbridge.warehouse.core import TABLES, build_core
from tests.warehouse.test_core_fixtures import TinyWarehouse, as_of, resident, street

T1 = as_of(dt.date(2026, 11, 19))
T2 = as_of(dt.date(2026, 11, 20))


@pytest.fixture
def w(tmp_path):
    warehouse = TinyWarehouse(tmp_path / "wh.duckdb")
    yield warehouse
    warehouse.close()


def _core(w: TinyWarehouse) -> dict[str, list]:
    return {t: w.con.execute(f"SELECT * FROM core.{t}").fetchall() for t in TABLES}


def _by_keys_then_full(w: TinyWarehouse, tmp_path) -> tuple[dict, dict]:
    build_core(w.con, T2, raw.run_id_for(T2), tmp_path / "events")
    assert w.con.execute("SELECT mode FROM meta.core_state").fetchall() == [("by_keys",)]
    incremental = _core(w)
    build_core(w.con, T2, raw.run_id_for(T2), tmp_path / "events", full=True)
    assert w.con.execute("SELECT mode FROM meta.core_state").fetchall() == [("full",)]
    return incremental, _core(w)


def _two_residents(w: TinyWarehouse, tmp_path) -> tuple[str, str, str]:
    r1, r2 = w.run(T1), w.run(T2)
    street(w, r1)
    a, b = w.add(
        "registry__t_jm", r1, [resident(100, "FW2", "1940-01-01"), resident(200, "FW4", "1950-01-01")]
    )
    w.link("pk_a", ("registry", a))
    w.link("pk_b", ("registry", b))
    build_core(w.con, T1, r1, tmp_path / "events")
    return r2, a, b


def test_a_house_moved_to_another_building_updates_its_residents_rows(w, tmp_path):
    r2, a, _ = _two_residents(w, tmp_path)
    w.add(
        "registry__t_fw",
        r2,
        [{"fwbh": "FW2", "xqbm": "XQ001", "ld": "4", "dy": "1", "fh": "502", "wgbm": "G1"}],
    )
    incremental, full = _by_keys_then_full(w, tmp_path)
    assert incremental == full
    rows = w.con.execute("SELECT building FROM core.residency WHERE record_key = ?", [a]).fetchall()
    assert rows == [("4",)]


def test_a_record_moved_to_another_person_key_updates_its_rows(w, tmp_path):
    _, a, _ = _two_residents(w, tmp_path)
    w.link("pk_c", ("registry", a))
    incremental, full = _by_keys_then_full(w, tmp_path)
    assert incremental == full
    assert w.con.execute("SELECT person_key FROM core.residency WHERE record_key = ?", [a]).fetchall() == [
        ("pk_c",)
    ]


def test_a_newer_registry_row_of_the_person_makes_the_old_row_not_current(w, tmp_path):
    r2, a, _ = _two_residents(w, tmp_path)
    (c,) = w.add("registry__t_jm", r2, [resident(300, "FW5", "1940-01-01", rzrq="2026-11-20")])
    w.link("pk_a", ("registry", c))
    incremental, full = _by_keys_then_full(w, tmp_path)
    assert incremental == full
    current = w.con.execute(
        "SELECT record_key, is_person_current FROM core.residency ORDER BY record_key"
    ).fetchall()
    assert dict(current)[a] is False and dict(current)[c] is True


def test_a_new_version_and_a_deletion_close_the_rows_they_change(w, tmp_path):
    r2, a, b = _two_residents(w, tmp_path)
    w.add("registry__t_jm", r2, [resident(100, "FW2", "1940-01-01", zt="3", zxrq="2026-11-20")])
    w.con.execute("INSERT INTO meta.deletions VALUES (?, 'registry', 't_jm', ?)", [r2, b])
    incremental, full = _by_keys_then_full(w, tmp_path)
    assert incremental == full
    assert [r for r in incremental["residency"] if r[1] == a][0][-2:] == (False, False)
    assert len([r for r in incremental["residency"] if r[1] == a]) == 2


def test_a_past_as_of_or_a_past_run_changed_is_built_whole(w, tmp_path):
    r2, a, _ = _two_residents(w, tmp_path)
    build_core(w.con, T2, r2, tmp_path / "events")
    build_core(w.con, T1, raw.run_id_for(T1), tmp_path / "events")  # back in time: nothing to keep
    assert w.con.execute("SELECT mode FROM meta.core_state").fetchall() == [("full",)]
    build_core(w.con, T2, r2, tmp_path / "events")
    w.add("registry__t_jm", raw.run_id_for(T1), [resident(400, "FW6", "1960-01-01")])  # a past run grew
    build_core(w.con, T2, r2, tmp_path / "events")
    assert w.con.execute("SELECT mode FROM meta.core_state").fetchall() == [("full",)]
    assert w.con.execute("SELECT count(*) FROM core.residency WHERE registry_row_id = '400'").fetchall() == [
        (1,)
    ]


def _table_oid(w: TinyWarehouse, table: str) -> int:
    return w.con.execute(
        "SELECT table_oid FROM duckdb_tables() WHERE schema_name = 'core' AND table_name = ?", [table]
    ).fetchall()[0][0]


def test_a_day_with_no_changed_key_keeps_the_history_table_as_it_is(w, tmp_path):
    """Nothing new, moved or re-keyed: the table is not written again (it already holds a full build's rows,
    in its order); a changed key rewrites it."""
    _, a, _ = _two_residents(w, tmp_path)
    kept = _table_oid(w, "residency")
    build_core(w.con, T2, raw.run_id_for(T2), tmp_path / "events")
    assert w.con.execute("SELECT mode FROM meta.core_state").fetchall() == [("by_keys",)]
    assert _table_oid(w, "residency") == kept
    w.link("pk_c", ("registry", a))
    incremental, full = _by_keys_then_full(w, tmp_path)
    assert incremental == full and _table_oid(w, "residency") != kept
