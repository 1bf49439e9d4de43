"""Event logs kept as Parquet parts behind ``raw.<source>__events`` (`islandbridge.landing.raw_parts`)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from islandbridge.config import Retention
from islandbridge.connectors.base import Stream
from islandbridge.landing import raw, raw_parts
from islandbridge.landing.raw_parts import RawParts
from islandbridge.landing.zone import LandingWriter
from islandbridge.privacy.keys import VAULT, KeyRing, new_keyring_text
from islandbridge.privacy.scrub import Scrubber
from islandbridge.privacy.sealing import LoadPrivacy
from islandbridge.privacy.vault import Vault
from islandbridge.quality.quarantine import ephemeral_keyring
from islandbridge.warehouse import retention
from tests.warehouse.test_core import T1, T2, build, event, files_on_disk
from tests.warehouse.test_core_fixtures import TinyWarehouse, ms

HOUR_MS = 3_600_000
COLUMNS = ["event_id", "ts", "device_id", "type", "holder_id", "_record_key"]


def _landed(folder, ids):
    folder.mkdir(parents=True)
    rows = {c: [None] * len(ids) for c in COLUMNS}
    rows["event_id"], rows["_record_key"] = list(ids), [f"events:{i}" for i in ids]
    pq.write_table(
        pa.table({c: pa.array(v, pa.string()) for c, v in rows.items()}), folder / "part-00000.parquet"
    )
    return str(folder)


def _table(con, sql):
    return sorted(con.execute(sql).fetchall(), key=repr)


def test_a_run_slice_is_linked_not_copied_and_loading_it_again_changes_nothing(tmp_path):
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    run = w.run(T1)
    landed = _landed(tmp_path / "landing" / "events", ["e1", "e2"])
    parts = RawParts(tmp_path / "raw", "iot", "events")
    for _ in range(2):
        staged = parts.stage(pafs.LocalFileSystem(), landed, run, COLUMNS)
        parts.publish(w.con, staged)
        parts.collect_garbage(w.con)
        assert _table(w.con, "SELECT event_id, _run_id FROM raw.iot__events") == [("e1", run), ("e2", run)]
        assert len(files_on_disk(parts.folder)) == 1
    (part,) = (p for p in parts.folder.rglob("*.parquet"))
    assert part.stat().st_ino == (tmp_path / "landing" / "events" / "part-00000.parquet").stat().st_ino


def test_a_new_slice_of_the_same_run_replaces_the_old_one_and_its_files_go(tmp_path):
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    run = w.run(T1)
    parts = RawParts(tmp_path / "raw", "iot", "events")
    for n, ids in enumerate((["e1", "e2"], ["e3"])):
        staged = parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / f"landing{n}", ids), run, COLUMNS)
        (parts.folder / f"_run_id={run}" / ".tmp-killed").mkdir()  # a load killed before its rename
        parts.publish(w.con, staged)
        parts.collect_garbage(w.con)
    assert _table(w.con, "SELECT event_id FROM raw.iot__events") == [("e3",)]
    assert len(files_on_disk(parts.folder)) == 1


@pytest.fixture
def legacy(tmp_path):
    """A warehouse from before the parts: the event log as a table, built for two runs."""
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    r1, r2 = w.run(T1), w.run(T2)
    w.add("iot__events", r1, [event("e1", ms(T1) - 5 * HOUR_MS), event("e2", ms(T1) - 3 * HOUR_MS)])
    w.add("iot__events", r2, [event("e2", ms(T1) - 3 * HOUR_MS), event("e3", ms(T2) - HOUR_MS)])
    yield w, r1, r2
    w.close()


def test_a_legacy_events_table_becomes_parts_with_the_same_rows(legacy, tmp_path):
    w, r1, r2 = legacy
    everything = (
        "SELECT event_id, ts, device_id, type, holder_id, value, _record_key, _run_id FROM raw.iot__events"
    )
    before = _table(w.con, everything)
    RawParts(tmp_path / "raw", "iot", "events").adopt(w.con, skip_run="none")
    raw_parts.refresh_view(w.con, "raw.iot__events")
    assert raw_parts.is_parts(w.con, "raw.iot__events")
    assert _table(w.con, everything) == before


def test_device_events_built_from_parts_equal_those_built_from_the_table(legacy, tmp_path):
    w, r1, r2 = legacy
    for t in (T1, T2):
        build(w, t, tmp_path / "from_table")
    from_table = _table(w.con, "SELECT * FROM core.device_event_runs"), files_on_disk(tmp_path / "from_table")
    RawParts(tmp_path / "raw", "iot", "events").adopt(w.con, skip_run="none")
    raw_parts.refresh_view(w.con, "raw.iot__events")
    w.con.execute("DELETE FROM core.device_event_files; DELETE FROM core.device_event_runs")
    for t in (T1, T2):
        build(w, t, tmp_path / "from_parts")
    assert (
        _table(w.con, "SELECT * FROM core.device_event_runs"),
        files_on_disk(tmp_path / "from_parts"),
    ) == from_table
    assert w.con.execute("SELECT sum(duplicates) FROM core.device_event_runs").fetchall() == [(1,)]


def test_retention_unlists_merged_part_slices_and_deletes_their_files(legacy, tmp_path):
    w, r1, r2 = legacy
    events = tmp_path / "events"
    parts = RawParts(tmp_path / "raw", "iot", "events")
    parts.adopt(w.con, skip_run="none")
    raw_parts.refresh_view(w.con, "raw.iot__events")
    for t in (T1, T2):
        build(w, t, events)
    win = retention.window(w.con, Retention(days=1))
    counts = retention.prune(w.con, win, Retention(days=1), tmp_path / "no-vault.duckdb", events, apply=True)
    assert counts["raw_device_events"] == 2
    assert _table(w.con, "SELECT DISTINCT _run_id FROM raw.iot__events") == [(r2,)]
    assert [p.split("/")[0] for p in files_on_disk(parts.folder)] == [f"_run_id={r2}"]
    assert _table(w.con, "SELECT event_id FROM core.device_events") == [("e1",), ("e2",), ("e3",)]


def test_a_load_killed_after_staging_leaves_the_view_on_its_files_and_the_next_load_clears_the_rest(tmp_path):
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    run = w.run(T1)
    parts = RawParts(tmp_path / "raw", "iot", "events")
    parts.publish(
        w.con, parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / "first", ["e1"]), run, COLUMNS)
    )
    parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / "second", ["e2"]), run, COLUMNS)  # killed here
    assert _table(w.con, "SELECT event_id FROM raw.iot__events") == [("e1",)]
    assert len(files_on_disk(parts.folder)) == 2
    parts.collect_garbage(w.con)
    assert _table(w.con, "SELECT event_id FROM raw.iot__events") == [("e1",)]
    assert len(files_on_disk(parts.folder)) == 1


EVENTS = Stream(
    "events", "event_id", ("event_id", "ts", "device_id", "type", "holder_id", "value", "alarm_code")
)


def _load_events(tmp_path, con, run_id, ids, *, corrupt_quarantine=False):
    writer = LandingWriter.open(tmp_path.joinpath("landing").as_uri(), run_id, "iot", [EVENTS])
    writer.read("events", len(ids))
    writer.write("events", [{"event_id": i, "ts": "1795086000000", "device_id": "DR1"} for i in ids])
    writer.close({})
    if corrupt_quarantine:  # fails inside the load's transaction, after the parts were staged
        for part in (tmp_path / "landing" / run_id / "iot" / "_quarantine").glob("*.parquet"):
            part.write_bytes(b"not parquet")
    vault = Vault.open(tmp_path / "vault.duckdb", KeyRing.parse(new_keyring_text(kid="v-test"), VAULT))
    privacy = LoadPrivacy(vault, ephemeral_keyring(), {"iot": "iot_rest"}, Scrubber())
    return raw.load_source(
        con,
        tmp_path.joinpath("landing").as_uri(),
        run_id,
        "iot",
        T1,
        T1,
        privacy,
        parts_root=tmp_path / "raw",
    )


def test_the_loader_keeps_an_event_log_as_parts_and_a_failed_load_changes_nothing(tmp_path):
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    run = raw.run_id_for(T1)
    _load_events(tmp_path, con, run, ["e1", "e2"])
    first = (
        _table(con, "SELECT event_id, _record_key, _run_id FROM raw.iot__events"),
        files_on_disk(tmp_path / "raw" / "iot__events"),
    )
    _load_events(tmp_path, con, run, ["e1", "e2"])
    assert (
        _table(con, "SELECT event_id, _record_key, _run_id FROM raw.iot__events"),
        files_on_disk(tmp_path / "raw" / "iot__events"),
    ) == first
    assert first[0] == [("e1", "events:e1", run), ("e2", "events:e2", run)] and len(first[1]) == 1
    with pytest.raises(Exception, match="(?i)parquet"):
        _load_events(tmp_path, con, run, ["e3"], corrupt_quarantine=True)
    assert _table(con, "SELECT event_id, _record_key, _run_id FROM raw.iot__events") == first[0]
    _load_events(tmp_path, con, run, ["e4"])
    assert _table(con, "SELECT event_id FROM raw.iot__events") == [("e4",)]
    assert len(files_on_disk(tmp_path / "raw" / "iot__events")) == 1


def test_parts_reached_through_another_spelling_of_the_folder_are_not_deleted(tmp_path):
    """A load through a symlinked (or relative) warehouse path, then one through the real path: the listed
    parts are the same files and stay."""
    w = TinyWarehouse(tmp_path / "wh.duckdb")
    run = w.run(T1)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    parts = RawParts(tmp_path / "link", "iot", "events")
    parts.publish(
        w.con, parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / "landing", ["e1"]), run, COLUMNS)
    )
    assert RawParts(tmp_path / "real", "iot", "events").collect_garbage(w.con) == 0
    assert _table(w.con, "SELECT event_id FROM raw.iot__events") == [("e1",)]
