"""The data dictionary: every core and mart table described as built, and the document kept in step."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from islandbridge.delivery.dictionary import DictionaryError, load_core_tables, parse_core_tables, render
from islandbridge.delivery.snapshot import publish_snapshot
from islandbridge.schemas import load_tables
from islandbridge.warehouse.core import build_core
from islandbridge.warehouse.marts import build_marts
from tests.warehouse.test_core_fixtures import TinyWarehouse, as_of

T = as_of(dt.date(2026, 11, 20))
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"
IDENTITY_TABLES = {
    "identity_map",
    "identity_map_before",
    "identity_map_changes",
    "identity_decisions",
    "identity_links",
    "identity_review",
}  # described in docs/identity.md; never in the analysts' snapshot


def test_the_committed_dictionary_is_what_the_schemas_generate():
    """Regenerate with `python -m islandbridge.delivery.dictionary docs/data-dictionary.md`."""
    assert DOCUMENT.read_text(encoding="utf-8") == render(load_tables(), load_core_tables())


def test_every_built_core_table_and_mart_is_described_column_by_column(tmp_path):
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    try:
        run = w.run(T)
        build_core(w.con, T, run, tmp_path / "events")
        build_marts(w.con, T, run)
        built = {}
        for schema, table, column, kind in w.con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('core', 'marts') ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall():
            if table not in IDENTITY_TABLES:
                built.setdefault(f"{schema}.{table}", []).append((column, kind))
    finally:
        w.close()
    described = {name: [(c.name, c.type) for c in t.columns] for name, t in load_core_tables().items()}
    assert described == built


def test_every_core_and_mart_table_of_the_analysts_snapshot_is_described(tmp_path):
    """docs/analysts.md sends analysts to the dictionary: each table the snapshot carries is in it, with
    every column the snapshot keeps; no identity table of one row per record is in the snapshot."""
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    try:
        run = w.run(T)
        build_core(w.con, T, run, tmp_path / "events")
        build_marts(w.con, T, run)
    finally:
        w.close()
    path = publish_snapshot(
        tmp_path / "wh.duckdb", tmp_path / "snapshots", run, keep=1, events_dir=tmp_path / "events"
    )
    with duckdb.connect(str(path), read_only=True) as con:
        carried: dict[str, list[str]] = {}
        for schema, table, column in con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema IN ('core', 'marts') ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall():
            carried.setdefault(f"{schema}.{table}", []).append(column)
    described = load_core_tables()
    assert "core.identity_events" in carried and "core.person_key_redirects" in carried
    assert not {name.split(".")[1] for name in carried} & IDENTITY_TABLES
    assert sorted(set(carried) - set(described)) == []
    for name, columns in carried.items():
        assert set(columns) <= {c.name for c in described[name].columns}, name


def test_a_malformed_definition_is_refused_with_every_problem():
    text = """
name: marts.broken
kind: table
layer: mart
grain: one row per nothing
key: [person_key]
columns:
  person_key: {type: VARCHAR, pii: none, description: a key}
  name: {type: VARCHAR, pii: direct, description: a name}
  note: {type: VARCHAR, pii: none, description: one, two}
report: {department: grid_centre, columns: [person_ref, phone, shoe_size], from_vault: [phone, shoe_size]}
"""
    with pytest.raises(DictionaryError) as caught:
        parse_core_tables({"broken.yml": text})
    message = str(caught.value)
    assert "never pii: direct" in message and "quote a description" in message and "shoe_size" in message


def test_each_mart_names_the_columns_its_department_policy_exports():
    """The YAML's report section says what the exporter's policy (schemas/policies) does."""
    from islandbridge.delivery.policy import load_policies

    policies = load_policies()
    for name, table in load_core_tables().items():
        if table.layer != "mart":
            continue
        policy = policies[table.report["department"]].reports[table.table]
        assert list(table.report["columns"]) == [c.name for c in policy.columns], name
        assert set(table.report.get("from_vault") or []) == set(policy.vault_fields()), name
        assert set(policy.mart_columns()) <= {c.name for c in table.columns}, name
