"""The raw loader commits a source's rows, accounting and state together, and re-loads idempotently."""

from __future__ import annotations

import datetime as dt

import pytest

from islandbridge.connectors.base import Stream
from islandbridge.landing import raw
from islandbridge.landing.zone import LandingWriter
from islandbridge.privacy.keys import VAULT, KeyRing, new_keyring_text
from islandbridge.privacy.scrub import Scrubber
from islandbridge.privacy.sealing import LoadPrivacy, unseal_quarantine
from islandbridge.privacy.vault import Vault
from islandbridge.quality.quarantine import ephemeral_keyring

AS_OF = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
LOADED_AT = dt.datetime(2026, 11, 21, 1, tzinfo=dt.UTC)
HOUSES = Stream("houses", "hid", ("hid", "room"))
PEOPLE = Stream("people", "pid", ("pid", "hid"), person_bearing=True)


def _land(tmp_path, run_id, rows, state, quarantine=()):
    writer = LandingWriter.open(tmp_path.joinpath("landing").as_uri(), run_id, "src", [HOUSES, PEOPLE])
    writer.read("houses", len(rows))
    writer.write("houses", rows)
    writer.read("people", len(quarantine))
    for key in quarantine:
        writer.quarantine("people", key, "no usable id", {"pid": key})
    return writer.close(state)


class _Privacy:
    """A vault and quarantine keyring of the test's own; ``src`` has no schema, so all its columns are direct."""

    def __init__(self, tmp_path):
        self.vault_ring = KeyRing.parse(new_keyring_text(kid="v-test"), VAULT)
        self.vault = Vault.open(tmp_path / "vault.duckdb", self.vault_ring)
        self.ring = ephemeral_keyring()
        self.load = LoadPrivacy(self.vault, self.ring, {"src": "test_kind"}, Scrubber())


_PRIVACY: dict = {}


def _load(tmp_path, con, run_id=None, as_of=AS_OF):
    privacy = _PRIVACY.setdefault(tmp_path, _Privacy(tmp_path))
    return raw.load_source(
        con,
        tmp_path.joinpath("landing").as_uri(),
        run_id or raw.run_id_for(as_of),
        "src",
        as_of,
        LOADED_AT,
        privacy.load,
    )


def _snapshot(con):
    tables = ["raw.src__houses", "raw.src__people", "meta.run_sources", "meta.source_state"]
    snap = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    snap["meta.quarantine"] = con.execute(
        "SELECT run_id, source, stream, record_key, reason, kid FROM meta.quarantine ORDER BY ALL"
    ).fetchall()
    return snap


def test_run_ids_are_derived_from_the_interval():
    assert (
        raw.run_id_for(dt.datetime(2026, 11, 21, tzinfo=dt.timezone(dt.timedelta(hours=8))))
        == "ib_20261120T160000Z"
    )


def test_loading_the_same_run_twice_changes_nothing(tmp_path):
    run_id = raw.run_id_for(AS_OF)
    _land(tmp_path, run_id, [{"hid": "H1", "room": "0501"}], {"w": 1}, quarantine=["people:9"])
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    _load(tmp_path, con)
    first = _snapshot(con)
    _load(tmp_path, con)
    assert _snapshot(con) == first
    # A stream without a schema is all direct: only its key reaches the warehouse, the row is in the vault.
    assert first["raw.src__houses"] == [("houses:H1", run_id)]
    privacy = _PRIVACY[tmp_path]
    assert privacy.vault.open_records("src", "houses", [("houses:H1", run_id)]) == [
        {"hid": "H1", "room": "0501"}
    ]
    assert first["meta.quarantine"] == [(run_id, "src", "people", "people:9", "no usable id", "q-test")]
    sealed = con.execute("SELECT kid, nonce, ciphertext FROM meta.quarantine").fetchone()
    assert b"people:9" not in bytes(sealed[2])
    assert unseal_quarantine(privacy.ring, run_id, "src", "people", "people:9", 1, *sealed) == {
        "pid": "people:9"
    }


def test_a_quarantined_record_without_keys_is_refused_not_stored_in_clear(tmp_path):
    run_id = raw.run_id_for(AS_OF)
    _land(tmp_path, run_id, [], {"w": 1}, quarantine=["people:9"])
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    with pytest.raises(raw.LoadError, match="must be sealed"):
        raw.load_source(con, tmp_path.joinpath("landing").as_uri(), run_id, "src", AS_OF, LOADED_AT)
    assert con.execute("SELECT count(*) FROM meta.quarantine").fetchone() == (0,)


def test_state_is_committed_with_its_data_and_read_back_by_the_next_interval(tmp_path):
    _land(tmp_path, raw.run_id_for(AS_OF), [{"hid": "H1", "room": "1"}], {"watermark": "2026-11-20 10:00:00"})
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    _load(tmp_path, con)
    assert raw.previous_state(con, "src", AS_OF + dt.timedelta(days=1)) == {
        "watermark": "2026-11-20 10:00:00"
    }
    assert raw.previous_state(con, "src", AS_OF) == {}, (
        "re-running an interval starts from the state before it"
    )


def test_a_load_that_fails_half_way_leaves_the_warehouse_as_it_was(tmp_path):
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    _land(tmp_path, raw.run_id_for(AS_OF), [{"hid": "H1", "room": "1"}], {"w": 1})
    _load(tmp_path, con)
    before = _snapshot(con)
    later = AS_OF + dt.timedelta(days=1)
    _land(tmp_path, raw.run_id_for(later), [{"hid": "H2", "room": "2"}], {"w": 2})
    part = next((tmp_path / "landing" / raw.run_id_for(later) / "src" / "people").glob("*.parquet"))
    part.write_bytes(b"not parquet")  # the second stream of the source is unreadable
    with pytest.raises(Exception, match="(?i)parquet"):
        _load(tmp_path, con, as_of=later)
    assert _snapshot(con) == before


def test_loading_without_a_complete_extraction_says_what_to_run(tmp_path):
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    with pytest.raises(raw.LoadError, match="islandbridge extract --source src"):
        _load(tmp_path, con)


def test_every_file_outcome_is_loaded_into_meta_source_files(tmp_path):
    """A file-based source's per-file outcomes (name, outcome, reason, rows) reach ``meta.source_files``,
    replaced, not doubled, when the run is loaded again."""
    run_id = raw.run_id_for(AS_OF)
    writer = LandingWriter.open(tmp_path.joinpath("landing").as_uri(), run_id, "src", [HOUSES, PEOPLE])
    writer.read("houses")
    writer.write("houses", [{"hid": "H1", "room": "0501"}])
    writer.file("houses", "b.csv", "landed", None, 1)
    writer.file("houses", "a.csv", "superseded", "an older version than b.csv: not read")
    writer.file(None, "notes.txt", "ignored", "not a roster file name")
    writer.close({})
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    for _ in range(2):
        _load(tmp_path, con)
    rows = con.execute(
        "SELECT run_id, source, stream, file, outcome, reason, rows FROM meta.source_files ORDER BY file"
    ).fetchall()
    assert rows == [
        (run_id, "src", "houses", "a.csv", "superseded", "an older version than b.csv: not read", 0),
        (run_id, "src", "houses", "b.csv", "landed", None, 1),
        (run_id, "src", None, "notes.txt", "ignored", "not a roster file name", 0),
    ]
