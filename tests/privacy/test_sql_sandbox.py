"""`islandbridge sql`: an operator's query reaches the warehouse's tables and views, and nothing else."""

from __future__ import annotations

import duckdb
import pytest

from islandbridge.cli import main

SECRET = "v1:c2VjcmV0LWtleS1tYXRlcmlhbA"


@pytest.fixture
def config(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "vault.keys").write_text(SECRET + "\n", encoding="ascii")
    (tmp_path / "warehouse" / "events").mkdir(parents=True)
    warehouse = tmp_path / "warehouse" / "warehouse.duckdb"
    events = tmp_path / "warehouse" / "events" / "day.parquet"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA core; CREATE TABLE core.persons AS SELECT 'pk_1' AS person_key")
        con.execute(f"COPY (SELECT 7 AS n) TO '{events}'")
        con.execute(f"CREATE VIEW core.device_events AS SELECT * FROM read_parquet('{events}')")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "vault.duckdb").write_bytes(b"")
    path = tmp_path / "islandbridge.yml"
    path.write_text(
        "street: {code: '511403001'}\nlanding: {url: landing}\n"
        "warehouse: {path: warehouse/warehouse.duckdb}\nvault: {path: private/vault.duckdb}\n"
        "keys: {vault: {file: secrets/vault.keys}}\n",
        encoding="utf-8",
    )
    return path


def sql(config, query):
    return main(["sql", "--config", str(config), query])


def test_a_select_on_tables_and_event_views_still_works(config, capsys):
    assert sql(config, "SELECT count(*) AS persons FROM core.persons") == 0
    assert sql(config, "SELECT n FROM core.device_events") == 0
    out = capsys.readouterr().out
    assert "persons" in out and "7" in out


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("SELECT * FROM read_text('{home}/secrets/vault.keys')", "outside the warehouse"),
        ("SELECT content FROM read_blob('{home}/secrets/*')", "outside the warehouse"),
        ("SELECT * FROM read_csv('/etc/passwd')", "outside the warehouse"),
        ("SELECT * FROM glob('{home}/secrets/*')", "outside the warehouse"),
        ("SELECT * FROM read_parquet('{home}/warehouse/events/../../secrets/vault.keys')", "outside"),
        ("COPY core.persons TO '{home}/audit.jsonl'", "COPY statements are refused"),
        ("COPY core.persons TO '{home}/warehouse/events/day.parquet'", "COPY statements are refused"),
        ("EXPORT DATABASE '{home}/dump'", "EXPORT statements are refused"),
        ("ATTACH '{home}/private/vault.duckdb' AS v", "ATTACH statements are refused"),
        ("INSTALL httpfs", "LOAD statements are refused"),
        ("LOAD httpfs", "LOAD statements are refused"),
        ("SET enable_external_access = true", "SET statements are refused"),
        ("SELECT 1; COPY core.persons TO '{home}/x.csv'", "one statement per query, not 2"),
    ],
)
def test_file_access_copy_attach_extensions_and_settings_are_refused(config, capsys, query, why):
    home = config.parent
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert sql(config, query.format(home=home)) == 2
    err = capsys.readouterr()
    assert "query refused: " in err.err and why in err.err
    assert SECRET not in err.out + err.err and "root:" not in err.out + err.err
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == before, "nothing written"


def test_the_query_runs_with_external_access_off(config, capsys):
    assert sql(config, "SELECT * FROM duckdb_settings() WHERE name = 'enable_external_access'") == 0
    assert "false" in capsys.readouterr().out


def test_a_failed_query_masks_the_values_it_quotes(config, capsys):
    """DuckDB quotes the literal it could not read; the error repeats it masked, not whole."""
    assert sql(config, "SELECT '秦光明'::INT, '511403194310287757'::DATE") == 2
    err = capsys.readouterr().err
    assert "query failed" in err and "秦*明" in err and "秦光明" not in err
