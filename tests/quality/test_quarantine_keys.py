"""A roster row whose 序号 holds an ID number is keyed by it; the warehouse stores that key scrubbed only,
and the row can still be listed, shown and replayed by key."""

from __future__ import annotations

import json

import duckdb
import pytest

from islandbridge.landing import raw
from islandbridge.privacy import rowseal
from islandbridge.quality import quarantine
from islandbridge.quality.commands import quarantine_list, quarantine_replay, quarantine_show

DAY = "2026-11-20"
RUN = "ib_20261120T160000Z"
ROSTER = "511403001_202611_高龄补贴.csv"


@pytest.fixture(scope="module")
def id_in_serial(tmp_path_factory, served_street, quarantine_keys):
    """A street whose November senior roster has a householder's ID number typed into row 2's 序号, synced."""
    import shutil

    from tests.quality.conftest import Workspace

    street, grid_url, iot_url = served_street
    private = tmp_path_factory.mktemp("id-in-serial") / "street"
    shutil.copytree(street, private, ignore=shutil.ignore_patterns("events.jsonl"))
    path = private / "civil" / ROSTER
    lines = path.read_bytes().decode("gb18030").split("\n")
    row = next(n for n, line in enumerate(lines) if line.startswith("2,"))
    number = lines[row].split(",")[3].lstrip("'")
    lines[row] = number + lines[row][1:]
    path.write_bytes("\n".join(lines).encode("gb18030"))
    ws = Workspace(private.parent / "ws", private, grid_url, iot_url, quarantine_keys)
    ws.sync(DAY)
    return ws, number


def _holding(con: duckdb.DuckDBPyConnection, text: str) -> list[str]:
    """The warehouse's table columns (text, or lists of text) in which ``text`` occurs."""
    columns = con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() "
        "WHERE data_type IN ('VARCHAR', 'VARCHAR[]') AND NOT internal AND table_name IN "
        "(SELECT table_name FROM duckdb_tables())"
    ).fetchall()
    found = []
    for schema, table, column in columns:
        hits = con.execute(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE contains(CAST("{column}" AS VARCHAR), ?)',
            [text],
        ).fetchall()[0][0]
        if hits:
            found.append(f"{schema}.{table}.{column}")
    return found


def test_no_warehouse_table_holds_an_id_number_typed_into_a_serial(id_in_serial):
    ws, number = id_in_serial
    with ws.warehouse() as con:
        assert _holding(con, number) == []
        assert _holding(con, "senior:202611:[证件号]") == ["meta.quality_quarantine.record_key"]


def test_the_row_is_listed_shown_and_replayed_by_its_key(id_in_serial):
    ws, number = id_in_serial
    (entry,) = [
        e for e in quarantine_list(ws.settings, source="civil") if "seq_not_personal" in e.expectations_failed
    ]
    assert entry.record_key == "senior:202611:[证件号]"
    for key in (entry.record_key, f"senior:202611:{number}"):  # as listed, and whole
        shown = quarantine_show(ws.settings, RUN, "civil", "senior", key)
        assert shown["expectations_failed"] == ["seq_not_personal"] and shown["values"] == {
            "序号": "[证件号]"
        }
    assert quarantine_replay(ws.settings, "civil")["still_failing"] >= 1
    assert quarantine_list(ws.settings, source="civil") != []


def _stored_whole(con, ring, whole: str) -> None:
    """The warehouse as earlier versions left it: the quarantined row's key, and the roster's state, whole."""
    (row,) = con.execute(
        "SELECT run_id, source, stream, seq, nonce, ciphertext, kid FROM meta.quality_quarantine "
        "WHERE record_key = 'senior:202611:[证件号]'"
    ).fetchall()
    plain = rowseal.QUALITY.open(ring, row[6], row[4], row[5], *row[:3], "senior:202611:[证件号]", row[3])
    nonce, sealed = rowseal.QUALITY.seal(ring.active, plain, *row[:3], whole, row[3])
    con.execute(
        "UPDATE meta.quality_quarantine SET record_key = ?, nonce = ?, ciphertext = ? WHERE nonce = ?",
        [whole, nonce, sealed, row[4]],
    )
    ((as_of, text),) = con.execute(
        "SELECT as_of, state_json FROM meta.source_state WHERE source = 'civil'"
    ).fetchall()
    state = json.loads(text)
    month = state["months"]["senior:202611"]
    month["keys"] = [k for k in month["keys"] if k != "[证件号]"] + [whole.rpartition(":")[2]]
    con.execute(
        "UPDATE meta.source_state SET state_json = ? WHERE source = 'civil' AND as_of = ?",
        [json.dumps(state), as_of],
    )


def test_a_warehouse_that_stored_the_key_whole_is_rewritten_scrubbed_once(id_in_serial, tmp_path):
    """Warehouses from before stored the key whole (the seal bound to it) and the roster's state with it:
    the next load re-seals and re-stores them scrubbed; again, it finds nothing to do."""
    ws, number = id_in_serial
    old = ws.copy(tmp_path / "old")
    ring = quarantine.keyring(old.settings)
    whole = f"senior:202611:{number}"
    with duckdb.connect(str(old.settings.warehouse_path)) as con:
        _stored_whole(con, ring, whole)
        assert sorted(_holding(con, number)) == [
            "meta.quality_quarantine.record_key",
            "meta.source_state.state_json",
        ]
        assert rowseal.scrub_stored_keys(con, ring) == 1
        raw.scrub_legacy(con, ring, {"civil": "civil_files"})
        assert _holding(con, number) == []
        before = con.execute("SELECT * FROM meta.quality_quarantine ORDER BY nonce").fetchall()
        raw.scrub_legacy(con, ring, {"civil": "civil_files"})
        assert con.execute("SELECT * FROM meta.quality_quarantine ORDER BY nonce").fetchall() == before
    shown = quarantine_show(old.settings, RUN, "civil", "senior", whole)
    assert shown["record_key"] == "senior:202611:[证件号]" and shown["expectations_failed"] == [
        "seq_not_personal"
    ]
