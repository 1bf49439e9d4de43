"""`storage.has_table` and `storage.existing_columns` look in every attached database, or in the one named
(the quality gate's read-only warehouse, ``wh``), and count a view as a table unless told not to."""

from __future__ import annotations

import duckdb
import pytest

from islandbridge.storage import existing_columns, has_table


@pytest.fixture
def con(tmp_path):
    warehouse = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    warehouse.execute("CREATE SCHEMA raw; CREATE TABLE raw.registry__t_jm (k VARCHAR, read_from TIMESTAMP)")
    warehouse.execute("CREATE VIEW raw.iot__events AS SELECT 1 AS k")
    warehouse.close()
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.local_only (k VARCHAR)")
    con.execute(f"ATTACH '{tmp_path / 'warehouse.duckdb'}' AS wh (READ_ONLY)")
    yield con
    con.close()


def test_a_table_is_found_in_any_attached_database_unless_one_is_named(con):
    assert has_table(con, "raw.local_only") and has_table(con, "raw.registry__t_jm")
    assert not has_table(con, "raw.local_only", database="wh")
    assert has_table(con, "raw.registry__t_jm", database="wh")


def test_a_view_counts_as_a_table_unless_views_are_left_out(con):
    assert has_table(con, "raw.iot__events", database="wh")
    assert not has_table(con, "raw.iot__events", database="wh", views=False)
    assert has_table(con, "raw.registry__t_jm", database="wh", views=False)


def test_the_columns_of_a_table_in_the_named_database_only(con):
    assert existing_columns(con, "raw.registry__t_jm", database="wh") == {"k", "read_from"}
    assert existing_columns(con, "raw.local_only", database="wh") == set()
    assert existing_columns(con, "raw.local_only") == {"k"}
