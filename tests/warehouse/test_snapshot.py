"""Analysts' read-only snapshots: what they hold, how they are swapped in, pruned and rolled back."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from islandbridge.delivery.durable import locked
from islandbridge.delivery.snapshot import (
    CURRENT,
    SnapshotError,
    current_run,
    list_snapshots,
    publish_snapshot,
    rollback,
)
from tests.helpers import damaged_duckdb

T0 = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
EXPECTED_TABLES = {
    "core.persons",
    "core.identity_events",
    "core.person_key_redirects",
    "marts.island_coverage",
    "meta.runs",
    "meta.run_sources",
    "meta.identity_runs",
    "meta.quality_results",
    "meta.mart_builds",
    "meta.snapshot_info",
}


def run_id(day: int) -> str:
    return f"ib_202611{day:02d}T160000Z"


def write_events(events_dir: Path, day: str, count: int) -> None:
    """One day partition as a writer replaces it: a temp file renamed over the old one."""
    folder = events_dir / f"day={day}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"event_id": [f"e{day}-{i}" for i in range(count)], "card_ref": ["c"] * count})
    pq.write_table(table, folder / ".part.parquet.tmp")
    os.replace(folder / ".part.parquet.tmp", folder / "part-0.parquet")


def make_warehouse(path: Path, events_dir: Path, runs: int = 1, persons: int = 3) -> None:
    """A small warehouse with every kind of table a snapshot must take or leave, for ``runs`` runs."""
    with duckdb.connect(str(path)) as con:
        for schema in ("raw", "meta", "core", "marts"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute("""
            CREATE OR REPLACE TABLE raw.registry__t_jm AS SELECT 'j1' AS jmid, '张三' AS xm, 'k1' AS _record_key;
            CREATE OR REPLACE TABLE meta.runs (run_id VARCHAR, as_of TIMESTAMPTZ, status VARCHAR);
            CREATE OR REPLACE TABLE meta.run_sources AS SELECT 'r' AS run_id, 'registry' AS source, 10 AS read;
            CREATE OR REPLACE TABLE meta.identity_runs AS SELECT 'r' AS run_id, 3 AS persons;
            CREATE OR REPLACE TABLE meta.quality_results AS SELECT 'r' AS run_id, true AS success;
            CREATE OR REPLACE TABLE meta.mart_builds AS SELECT 'r' AS run_id, '{}' AS counts;
            CREATE OR REPLACE TABLE meta.quarantine AS SELECT 'k1' AS record_key, 'sealed' AS record_json;
            CREATE OR REPLACE TABLE meta.quality_quarantine AS SELECT 'k1' AS record_key;
            CREATE OR REPLACE TABLE meta.source_state AS SELECT 'registry' AS source, '{}' AS state_json;
            CREATE OR REPLACE TABLE meta.linkage_models AS SELECT 1 AS version, '{}' AS model_json;
            CREATE OR REPLACE TABLE meta.deletions AS SELECT 'k1' AS record_key;
            CREATE OR REPLACE TABLE core.identity_map AS SELECT 'resident_registry' AS system, 'k1' AS record_key,
                'p1' AS person_key;
            CREATE OR REPLACE TABLE core.identity_map_before AS SELECT * FROM core.identity_map;
            CREATE OR REPLACE TABLE core.identity_review AS SELECT 'k1' AS record_key_l, 'k2' AS record_key_r;
            CREATE OR REPLACE TABLE core.identity_map_changes AS SELECT 'r' AS run_id, 'resident_registry' AS system,
                'k1' AS record_key, 'p1' AS person_key, 'r' AS first_seen_run;
            CREATE OR REPLACE TABLE core.identity_links AS SELECT 'resident_registry' AS system_l,
                'k1' AS record_key_l, 'grid_platform' AS system_r, 'k2' AS record_key_r, 'id' AS rule,
                'fp_0123456789abcdef' AS fingerprint_l;
            CREATE OR REPLACE TABLE core.identity_events AS SELECT 'r' AS run_id, 'merge' AS event;
            CREATE OR REPLACE TABLE core.person_key_redirects AS SELECT 'p0' AS old_key, 'p1' AS new_key;
            CREATE OR REPLACE TABLE marts.island_coverage AS SELECT '东城社区' AS community, 3 AS persons_known;
        """)
        con.execute(
            "CREATE OR REPLACE TABLE core.persons AS SELECT 'p' || i AS person_key, 1950 + i AS birth_year, "
            "'某人' AS name, 'k' || i AS source_record_key FROM range(?) t(i)",
            [persons],
        )
        for day in range(20, 20 + runs):
            con.execute(
                "INSERT INTO meta.runs VALUES (?, ?, 'loaded')",
                [run_id(day), T0 + dt.timedelta(days=day - 20)],
            )
        glob = str(events_dir.absolute() / "*" / "*.parquet").replace("'", "''")
        con.execute(
            f"CREATE OR REPLACE VIEW core.device_events AS SELECT * FROM read_parquet('{glob}', "
            "hive_partitioning = true)"
        )
        con.execute(
            "CREATE OR REPLACE VIEW core.persons_by_year AS "
            "SELECT birth_year, count(*) AS n FROM core.persons GROUP BY 1"
        )
        con.execute("CREATE OR REPLACE VIEW core.mapped AS SELECT * FROM core.identity_map")


def tables_of(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            f"{s}.{t}"
            for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        }


def clock(day: int, second: int = 0):
    return lambda: dt.datetime(2026, 11, day, 17, 0, second, tzinfo=dt.UTC)


@pytest.fixture
def street(tmp_path) -> tuple[Path, Path, Path]:
    """(warehouse, events folder, snapshots folder) with four runs and one day of events."""
    events = tmp_path / "events"
    write_events(events, "2026-11-20", 5)
    make_warehouse(tmp_path / "warehouse.duckdb", events, runs=4)
    return tmp_path / "warehouse.duckdb", events, tmp_path / "snapshots"


def test_snapshot_holds_only_analyst_safe_tables(street):
    """raw, the identity tables of one row per record and private meta tables are left out (the map's
    history and the links too: without their record keys they still give each record's system, runs and
    fingerprint); core, marts, the person-key events and redirects, and accounting stay."""
    warehouse, events, snaps = street
    path = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events)
    assert tables_of(path) == EXPECTED_TABLES


def test_identifier_and_record_key_columns_are_dropped(street):
    warehouse, events, snaps = street
    path = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events)
    with duckdb.connect(str(path), read_only=True) as con:
        columns = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'core' AND table_name = 'persons'"
            ).fetchall()
        ]
        note = con.execute("SELECT note FROM meta.snapshot_info WHERE object = 'core.persons'").fetchall()[0][
            0
        ]
    assert columns == ["person_key", "birth_year"]
    assert "name" in note and "source_record_key" in note


def test_views_are_recreated_and_a_view_over_a_left_out_table_is_not(street):
    warehouse, events, snaps = street
    path = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT sum(n) FROM core.persons_by_year").fetchall() == [(3,)]
        info = dict(con.execute("SELECT object, kind FROM meta.snapshot_info").fetchall())
        views = {
            r[0]
            for r in con.execute(
                "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        }
    assert views == {"core.device_events", "core.persons_by_year"}
    assert info["core.mapped"] == "left out"
    assert info["core.device_events"] == "view"


def test_snapshot_info_names_run_and_tables(street):
    warehouse, events, snaps = street
    path = publish_snapshot(warehouse, snaps, run_id(21), keep=3, events_dir=events, clock=clock(22))
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT DISTINCT run_id, as_of, published_at FROM meta.snapshot_info").fetchall()
        counted = dict(
            con.execute("SELECT object, rows FROM meta.snapshot_info WHERE kind = 'table'").fetchall()
        )
    assert rows == [(run_id(21), T0 + dt.timedelta(days=1), clock(22)())]
    assert counted["core.persons"] == 3 and counted["marts.island_coverage"] == 1


def test_snapshot_opens_read_only_and_refuses_writes(street):
    warehouse, events, snaps = street
    path = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events)
    assert path.stat().st_mode & 0o222 == 0
    with duckdb.connect(str(snaps / CURRENT), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.persons").fetchall() == [(3,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE core.mine AS SELECT 1")


def test_events_view_reads_the_events_as_published(street):
    """The next sync rewriting a day partition does not change what an existing snapshot shows."""
    warehouse, events, snaps = street
    path = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events)
    write_events(events, "2026-11-20", 9)
    write_events(events, "2026-11-21", 4)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*), min(day) FROM core.device_events").fetchall() == [
            (5, dt.date(2026, 11, 20))
        ]
        sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'device_events'").fetchall()[0][0]
    assert str(snaps) in sql and str(events) + "/" not in sql


def test_reader_keeps_its_snapshot_across_a_publish(street, tmp_path):
    """A connection held open on current.duckdb reads the same data while the next run is published."""
    warehouse, events, snaps = street
    publish_snapshot(warehouse, snaps, run_id(20), keep=1, events_dir=events, clock=clock(20))
    reader = duckdb.connect(str(snaps / CURRENT), read_only=True)
    try:
        before = reader.execute(
            "SELECT (SELECT count(*) FROM core.persons), (SELECT count(*) FROM "
            "core.device_events), (SELECT any_value(run_id) FROM meta.snapshot_info)"
        ).fetchall()
        make_warehouse(warehouse, events, runs=4, persons=7)
        write_events(events, "2026-11-20", 11)
        publish_snapshot(warehouse, snaps, run_id(21), keep=1, events_dir=events, clock=clock(21))
        assert not (snaps / f"{run_id(20)}.duckdb").exists()  # pruned while held open
        after = reader.execute(
            "SELECT (SELECT count(*) FROM core.persons), (SELECT count(*) FROM "
            "core.device_events), (SELECT any_value(run_id) FROM meta.snapshot_info)"
        ).fetchall()
    finally:
        reader.close()
    assert before == after == [(3, 5, run_id(20))]
    with duckdb.connect(str(snaps / CURRENT), read_only=True) as fresh:
        assert fresh.execute(
            "SELECT (SELECT count(*) FROM core.persons), (SELECT count(*) FROM core.device_events)"
        ).fetchall() == [(7, 11)]


def test_readers_opening_current_during_publishes_always_see_one_whole_snapshot(street):
    """Every open of current.duckdb while runs are published finds a complete snapshot of a single run."""
    warehouse, events, snaps = street
    persons = {run_id(day): day - 17 for day in (20, 21, 22, 23)}
    publish_snapshot(warehouse, snaps, run_id(20), keep=2, events_dir=events, clock=clock(20))
    done, seen, errors = threading.Event(), [], []

    def read_until_done() -> None:
        while not done.is_set() or len(seen) < 3:
            try:
                with duckdb.connect(str(snaps / CURRENT), read_only=True) as con:
                    seen.append(
                        con.execute(
                            "SELECT (SELECT any_value(run_id) FROM meta.snapshot_info), "
                            "(SELECT count(*) FROM core.persons)"
                        ).fetchall()[0]
                    )
            except Exception as exc:  # any failure to read is what this test looks for
                errors.append(exc)
                return

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        for day in (21, 22, 23):
            make_warehouse(warehouse, events, runs=4, persons=persons[run_id(day)])
            publish_snapshot(warehouse, snaps, run_id(day), keep=2, events_dir=events, clock=clock(day))
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert seen and all(count == persons[run] for run, count in seen)


def test_prune_keeps_the_newest_n(street):
    warehouse, events, snaps = street
    for day in (20, 21, 22, 23):
        publish_snapshot(warehouse, snaps, run_id(day), keep=2, events_dir=events, clock=clock(day))
    kept = list_snapshots(snaps)
    assert [s.run_id for s in kept] == [run_id(23), run_id(22)]
    assert [s.is_current for s in kept] == [True, False]
    assert {p.name for p in snaps.glob("*.duckdb")} == {
        f"{run_id(22)}.duckdb",
        f"{run_id(23)}.duckdb",
        CURRENT,
    }
    assert len(list((snaps / "events").iterdir())) == 3  # the two kept, and the one pruned last


def test_republishing_a_run_replaces_its_snapshot(street):
    warehouse, events, snaps = street
    publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events, clock=clock(20))
    make_warehouse(warehouse, events, runs=4, persons=6)
    path = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events, clock=clock(20, 30))
    assert [s.run_id for s in list_snapshots(snaps)] == [run_id(20)]
    with duckdb.connect(str(snaps / CURRENT), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.persons").fetchall() == [(6,)]
    assert path.name == f"{run_id(20)}.duckdb"


def test_rollback_repoints_current(street):
    warehouse, events, snaps = street
    for day, persons in ((20, 3), (21, 8)):
        make_warehouse(warehouse, events, runs=4, persons=persons)
        publish_snapshot(warehouse, snaps, run_id(day), keep=3, events_dir=events, clock=clock(day))
    rollback(snaps, run_id(20))
    assert os.readlink(snaps / CURRENT) == f"{run_id(20)}.duckdb"
    with duckdb.connect(str(snaps / CURRENT), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.persons").fetchall() == [(3,)]
    assert [s.run_id for s in list_snapshots(snaps) if s.is_current] == [run_id(20)]
    with pytest.raises(SnapshotError, match=run_id(21)):
        rollback(snaps, run_id(25))
    with pytest.raises(SnapshotError, match=r"no snapshot of run 187\*\*\*\*7461 in"):
        rollback(snaps, "18798377461")  # a phone typed as the run: not repeated whole


def test_rollback_target_keeps_its_events_after_pruning(street):
    warehouse, events, snaps = street
    for day in (20, 21):
        publish_snapshot(warehouse, snaps, run_id(day), keep=2, events_dir=events, clock=clock(day))
    rollback(snaps, run_id(20))
    publish_snapshot(warehouse, snaps, run_id(22), keep=2, events_dir=events, clock=clock(22))
    assert {s.run_id for s in list_snapshots(snaps)} == {run_id(22), run_id(21)}
    rollback(snaps, run_id(21))
    with duckdb.connect(str(snaps / CURRENT), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.device_events").fetchall() == [(5,)]


def test_a_failed_publish_leaves_current_and_the_folder_as_they_were(street):
    warehouse, events, snaps = street
    publish_snapshot(warehouse, snaps, run_id(20), keep=2, events_dir=events)
    before = sorted(p.name for p in snaps.rglob("*"))
    with pytest.raises(SnapshotError, match="not in meta.runs"):
        publish_snapshot(warehouse, snaps, "ib_20991231T160000Z", keep=2, events_dir=events)
    assert sorted(p.name for p in snaps.rglob("*")) == before
    assert os.readlink(snaps / CURRENT) == f"{run_id(20)}.duckdb"


def test_unknown_run_and_bad_names_are_refused(street):
    warehouse, events, snaps = street
    with pytest.raises(SnapshotError, match=f"runs there: {run_id(23)}"):
        publish_snapshot(warehouse, snaps, "ib_20991231T160000Z", keep=2, events_dir=events)
    with pytest.raises(SnapshotError, match="cannot name a snapshot file"):
        publish_snapshot(warehouse, snaps, "../escape", keep=2, events_dir=events)
    with pytest.raises(SnapshotError, match="keep at least 1"):
        publish_snapshot(warehouse, snaps, run_id(20), keep=0, events_dir=events)
    assert not (snaps / CURRENT).exists()
    assert [p.name for p in snaps.iterdir() if p.name != "events"] == []


def test_the_next_publish_removes_what_a_killed_publish_left(street):
    """SIGKILL during a publish runs no cleanup: the next publish removes its temporary file, WAL and events."""
    warehouse, events, snaps = street
    publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events, clock=clock(20))
    live = {p.relative_to(snaps) for p in snaps.rglob("*")}
    killed = f"{run_id(21)}.20261121T170000000000Z-0123abcd"  # as a publish of run 21 names its files
    (snaps / f".{killed}.tmp.duckdb").write_bytes(b"half a database")
    (snaps / f".{killed}.tmp.duckdb.wal").write_bytes(b"its log")
    (snaps / "events" / killed / "day=2026-11-20").mkdir(parents=True)
    (snaps / "events" / killed / "day=2026-11-20" / "part-0.parquet").write_bytes(b"linked events")
    os.symlink(f"{run_id(21)}.duckdb", snaps / f".{CURRENT}.0123abcd.tmp")
    path = publish_snapshot(warehouse, snaps, run_id(21), keep=3, events_dir=events, clock=clock(21))
    left = {p.relative_to(snaps) for p in snaps.rglob("*")}
    assert not [p for p in left if killed in str(p) or p.name.startswith(".")]
    assert live <= left  # the earlier snapshot and its event copy are untouched
    assert [s.run_id for s in list_snapshots(snaps)] == [run_id(21), run_id(20)]
    for snapshot in (path, snaps / f"{run_id(20)}.duckdb"):
        with duckdb.connect(str(snapshot), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM core.device_events").fetchall() == [(5,)]


def test_a_second_publish_waits_for_the_one_under_way_and_leaves_its_files(street):
    """Two processes publishing at once: the second waits for the first's lock on the folder, so it never
    takes the first's temporary file for a leftover (flock: the kernel drops it when a process dies)."""
    warehouse, events, snaps = street
    publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events, clock=clock(20))
    in_flight = snaps / f".{run_id(21)}.20261121T170000000000Z-0123abcd.tmp.duckdb"
    done = threading.Event()
    with locked(snaps):  # as the first publish holds it while it writes
        in_flight.write_bytes(b"being written")
        second = threading.Thread(
            target=lambda: (
                publish_snapshot(warehouse, snaps, run_id(22), keep=3, events_dir=events),
                done.set(),
            )
        )
        second.start()
        assert not done.wait(0.5) and in_flight.exists()
    second.join(timeout=30)
    assert done.is_set() and not in_flight.exists()  # its owner "died" holding it: removed once free


def test_a_rollback_waits_for_a_publish_under_way(street):
    """A publish clears temporary names it finds under its lock; a rollback's temporary link to
    ``current`` is one, so the rollback takes the same lock and waits."""
    warehouse, events, snaps = street
    for day in (20, 21):
        publish_snapshot(warehouse, snaps, run_id(day), keep=3, events_dir=events, clock=clock(day))
    done = threading.Event()
    with locked(snaps):  # as a publish holds it
        back = threading.Thread(target=lambda: (rollback(snaps, run_id(20)), done.set()))
        back.start()
        assert not done.wait(0.5)
        assert os.readlink(snaps / "current.duckdb") == f"{run_id(21)}.duckdb"
    back.join(timeout=30)
    assert done.is_set() and os.readlink(snaps / "current.duckdb") == f"{run_id(20)}.duckdb"


def test_an_earlier_day_published_late_leaves_current_at_the_later_day(street):
    """Run 20 published after run 22 (an earlier day synced late) does not move analysts back: current
    stays at 22, 20's snapshot is kept and listed by name; publishing a later run moves current on."""
    warehouse, events, snaps = street
    publish_snapshot(warehouse, snaps, run_id(22), keep=3, events_dir=events, clock=clock(22))
    early = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events, clock=clock(23))
    assert os.readlink(snaps / CURRENT) == f"{run_id(22)}.duckdb"
    assert current_run(snaps) == run_id(22)
    assert early.is_file() and [s.run_id for s in list_snapshots(snaps)] == [run_id(20), run_id(22)]
    publish_snapshot(warehouse, snaps, run_id(23), keep=3, events_dir=events, clock=clock(24))
    assert current_run(snaps) == run_id(23)


def _events_read(path: Path) -> tuple[int, str]:
    """What a snapshot's core.device_events reads: its row count, and the view's SQL (the files it names)."""
    with duckdb.connect(str(path), read_only=True) as con:
        sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'device_events'").fetchall()[0][0]
        return con.execute("SELECT count(*) FROM core.device_events").fetchall()[0][0], sql


def test_after_the_snapshots_folder_moved_the_next_publish_repoints_every_kept_snapshot(street, tmp_path):
    """The views name their event copy by absolute path: moved, a kept snapshot read nothing (its old folder
    is gone) until the next publish re-points it at the copy beside it; publish time, order and mode stay."""
    warehouse, events, snaps = street
    for day in (20, 21):
        publish_snapshot(warehouse, snaps, run_id(day), keep=3, events_dir=events, clock=clock(day))
    moved = tmp_path / "moved"
    snaps.rename(moved)
    with pytest.raises(duckdb.IOException):
        _events_read(moved / f"{run_id(20)}.duckdb")
    before = [(s.run_id, s.published_at) for s in list_snapshots(moved)]
    publish_snapshot(warehouse, moved, run_id(22), keep=3, events_dir=events, clock=clock(22))
    for day in (20, 21, 22):
        count, sql = _events_read(moved / f"{run_id(day)}.duckdb")
        assert count == 5 and str(moved / "events") in sql and str(snaps) not in sql
        assert (moved / f"{run_id(day)}.duckdb").stat().st_mode & 0o777 == 0o444
    assert [(s.run_id, s.published_at) for s in list_snapshots(moved)][1:] == before
    assert not [p.name for p in moved.iterdir() if p.name.startswith(".")]  # no copy left behind


def test_a_rollback_in_a_copied_snapshots_folder_reads_the_copys_events_not_the_originals(street, tmp_path):
    """A copy (a backup restored elsewhere) read the original's event copies, and nothing once those went;
    a rollback there re-points the snapshot it goes to at the copy's own."""
    warehouse, events, snaps = street
    for day in (20, 21):
        publish_snapshot(warehouse, snaps, run_id(day), keep=3, events_dir=events, clock=clock(day))
    copy = tmp_path / "copy"
    shutil.copytree(snaps, copy, symlinks=True)
    rollback(copy, run_id(20))
    shutil.rmtree(snaps)
    count, sql = _events_read(copy / CURRENT)
    assert count == 5 and str(copy / "events") in sql and str(snaps) not in sql


def test_a_publish_rewrites_no_kept_snapshot_when_nothing_moved(street):
    warehouse, events, snaps = street
    first = publish_snapshot(warehouse, snaps, run_id(20), keep=3, events_dir=events, clock=clock(20))
    inode = first.stat().st_ino
    publish_snapshot(warehouse, snaps, run_id(21), keep=3, events_dir=events, clock=clock(21))
    assert first.stat().st_ino == inode


def test_a_damaged_warehouse_is_refused_with_the_snapshots_error(tmp_path):
    """publish on a warehouse whose blocks fail their checksum: `SnapshotError` naming it (not DuckDB's
    bare Error, and not "busy")."""
    warehouse = damaged_duckdb(tmp_path / "warehouse.duckdb")
    with pytest.raises(SnapshotError, match="cannot open the warehouse .*Corrupt database file"):
        publish_snapshot(
            warehouse, tmp_path / "snapshots", run_id(20), keep=3, events_dir=tmp_path / "events"
        )
