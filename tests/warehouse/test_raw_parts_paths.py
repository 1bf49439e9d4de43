"""The paths of raw parts (`islandbridge.landing.raw_parts`) are relative to the warehouse's folder: a copied,
moved or restored warehouse reads and deletes its own parts, never the original's."""

from __future__ import annotations

import logging
import re
import shutil

import pyarrow.fs as pafs
import pytest

from islandbridge.errors import IslandbridgeError
from islandbridge.landing import raw, raw_parts
from islandbridge.landing.folder_owner import SharedFolderError
from islandbridge.landing.raw_parts import MissingPartError, RawParts
from islandbridge.storage import transaction
from tests.warehouse.test_core import T1, T2
from tests.warehouse.test_core_fixtures import TinyWarehouse
from tests.warehouse.test_raw_parts import COLUMNS, _landed, _table

EVENTS = "SELECT event_id, _run_id FROM raw.iot__events"


def _two_runs(home, name="wh.duckdb"):
    """A warehouse ``home/{name}`` with the event log of two runs as parts under ``home/raw``."""
    home.mkdir(parents=True, exist_ok=True)
    w = TinyWarehouse(home / name)
    parts = RawParts(home / "raw", "iot", "events")
    runs = []
    for n, t in enumerate((T1, T2)):
        run = w.run(t)
        landed = _landed(home / f"landing{n}", [f"e{n}"])
        parts.publish(w.con, parts.stage(pafs.LocalFileSystem(), landed, run, COLUMNS))
        runs.append(run)
    return w, runs


def _parts_on_disk(home) -> list[str]:
    return sorted(p.relative_to(home / "raw").as_posix() for p in (home / "raw").rglob("*.parquet"))


def _make_legacy(w, home) -> None:
    """What earlier versions wrote: absolute paths under ``home/raw`` in meta.raw_parts."""
    prefix = str((home / "raw").absolute()) + "/"
    w.con.execute("UPDATE meta.raw_parts SET file = ? || file WHERE file <> ''", [prefix])


def test_parts_are_listed_relative_to_the_warehouse_folder(tmp_path):
    w, _ = _two_runs(tmp_path)
    files = [f for (f,) in w.con.execute("SELECT file FROM meta.raw_parts ORDER BY run_id").fetchall()]
    assert files and all(f.startswith("iot__events/_run_id=") for f in files)
    w.close()


def test_a_copied_warehouse_prunes_its_own_parts_and_leaves_the_originals(tmp_path):
    original, copy = tmp_path / "run", tmp_path / "copy"
    w, (r1, r2) = _two_runs(original)
    w.close()
    shutil.copytree(original, copy)
    before = _parts_on_disk(original)
    con = raw.connect(str(copy / "wh.duckdb"))
    listed = raw_parts.listed_files(con, "raw.iot__events")
    raw_parts.drop_runs(con, "raw.iot__events", "run_id = $run", {"run": r1}, apply=True)
    raw_parts.remove_unlisted(con, "raw.iot__events", listed)
    assert _table(con, EVENTS) == [("e1", r2)]
    con.close()
    assert _parts_on_disk(original) == before
    assert _parts_on_disk(copy) == [p for p in before if r2 in p]
    with raw.connect(str(original / "wh.duckdb")) as con:
        assert _table(con, EVENTS) == [("e0", r1), ("e1", r2)]


def test_a_copied_warehouse_reads_its_own_parts_once_opened_for_writing(tmp_path):
    """The view of the copy still named the original's files; the first write connection re-creates it."""
    original, copy = tmp_path / "run", tmp_path / "copy"
    w, (r1, r2) = _two_runs(original)
    w.close()
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    with raw.connect(str(copy / "wh.duckdb")) as con:
        assert _table(con, EVENTS) == [("e0", r1), ("e1", r2)]
        parts = RawParts(copy / "raw", "iot", "events")
        assert parts.collect_garbage(con) == 0
    assert len(_parts_on_disk(copy)) == 2


def test_a_legacy_warehouse_with_absolute_paths_is_migrated_at_open(tmp_path):
    w, runs = _two_runs(tmp_path)
    _make_legacy(w, tmp_path)
    w.close()
    with raw.connect(str(tmp_path / "wh.duckdb")) as con:
        files = [f for (f,) in con.execute("SELECT file FROM meta.raw_parts WHERE file <> ''").fetchall()]
        assert len(files) == 2 and not any(f.startswith("/") for f in files)
        assert _table(con, EVENTS) == [("e0", runs[0]), ("e1", runs[1])]


def test_a_legacy_copy_is_rebased_onto_its_own_parts_and_prunes_only_them(tmp_path):
    """The QA report: a copy of a warehouse written by an earlier version, pruned, deleted the original's
    parts. Its absolute rows name the original's folder; the copy's own parts are taken instead."""
    original, copy = tmp_path / "run", tmp_path / "copy"
    w, (r1, r2) = _two_runs(original)
    _make_legacy(w, original)
    w.close()
    shutil.copytree(original, copy)
    before = _parts_on_disk(original)
    con = raw.connect(str(copy / "wh.duckdb"))
    assert not con.execute("SELECT count(*) FROM meta.raw_parts WHERE file LIKE '/%'").fetchall()[0][0]
    listed = raw_parts.listed_files(con, "raw.iot__events")
    raw_parts.drop_runs(con, "raw.iot__events", "run_id = $run", {"run": r1}, apply=True)
    raw_parts.remove_unlisted(con, "raw.iot__events", listed)
    RawParts(copy / "raw", "iot", "events").collect_garbage(con)
    assert _table(con, EVENTS) == [("e1", r2)]
    con.close()
    assert _parts_on_disk(original) == before
    assert _parts_on_disk(copy) == [p for p in before if r2 in p]


def test_a_legacy_copy_without_its_parts_opens_and_its_load_is_refused_naming_the_part(tmp_path, caplog):
    """The copy opens (a warning names the part, so `sql` and `prune` work); a load stops on it."""
    original, copy = tmp_path / "run", tmp_path / "copy"
    w, (r1, r2) = _two_runs(original)
    _make_legacy(w, original)
    w.close()
    copy.mkdir()
    shutil.copyfile(original / "wh.duckdb", copy / "wh.duckdb")  # the raw/ folder left behind
    part = rf"iot__events/_run_id={r1}/\w+/part-00000\.parquet"
    with (
        caplog.at_level(logging.WARNING, logger=raw_parts.__name__),
        raw.connect(str(copy / "wh.duckdb")) as con,
    ):
        assert re.search(part, caplog.text) and "raw/ folder" in caplog.text
        assert _table(con, EVENTS) == []
        parts = RawParts(copy / "raw", "iot", "events")
        staged = parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / "again", ["e9"]), r2, COLUMNS)
        with pytest.raises(MissingPartError, match=part) as caught, transaction(con):
            parts.publish(con, staged)
    assert "operations.md" in str(caught.value)


def test_a_copy_with_a_lost_part_opens_and_prune_drops_its_run_before_a_load_goes_on(tmp_path, caplog):
    """Not a circle: the error advises prune --apply, and prune (a write connection) can run it."""
    original, copy = tmp_path / "run", tmp_path / "copy"
    w, (r1, r2) = _two_runs(original)
    w.close()
    shutil.copytree(original, copy)
    (gone,) = [p for p in (copy / "raw").rglob("*.parquet") if r1 in str(p)]
    gone.unlink()
    with caplog.at_level(logging.WARNING, logger=raw_parts.__name__):
        con = raw.connect(str(copy / "wh.duckdb"))
    assert f"_run_id={r1}/" in caplog.text and "view leaves it out" in caplog.text
    assert _table(con, EVENTS) == [("e1", r2)]
    parts = RawParts(copy / "raw", "iot", "events")
    staged = parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / "again", ["e9"]), r2, COLUMNS)
    with pytest.raises(MissingPartError, match=f"_run_id={r1}/"), transaction(con):
        parts.publish(con, staged)  # the event log would silently lose run 1's rows
    listed = raw_parts.listed_files(con, "raw.iot__events")
    with transaction(con):
        raw_parts.drop_runs(con, "raw.iot__events", "run_id = $run", {"run": r1}, apply=True)
    assert raw_parts.remove_unlisted(con, "raw.iot__events", listed) == 1
    with transaction(con):
        parts.publish(con, staged)
    assert _table(con, EVENTS) == [("e9", r2)]
    con.close()
    assert len(_parts_on_disk(original)) == 2


def test_a_deleted_part_gives_a_clear_error_not_a_duckdb_one(tmp_path):
    """A part deleted behind the warehouse's back: the next load names it and says what to do."""
    w, (r1, r2) = _two_runs(tmp_path)
    (gone,) = [p for p in (tmp_path / "raw").rglob("*.parquet") if r1 in str(p)]
    gone.unlink()
    parts = RawParts(tmp_path / "raw", "iot", "events")
    staged = parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / "again", ["e9"]), r2, COLUMNS)
    with pytest.raises(
        IslandbridgeError, match=rf"of raw.iot__events is missing from .*_run_id={r1}/"
    ) as caught:
        parts.publish(w.con, staged)
    assert isinstance(caught.value, MissingPartError)
    w.close()


def test_a_slice_whose_part_is_lost_can_still_be_dropped_by_retention(tmp_path):
    """What the missing-part message offers: dropping the run's slice leaves a view over the parts left."""
    w, (r1, r2) = _two_runs(tmp_path)
    w.close()
    (gone,) = [p for p in (tmp_path / "raw").rglob("*.parquet") if r1 in str(p)]
    gone.unlink()
    with raw.connect(str(tmp_path / "wh.duckdb")) as con:
        listed = raw_parts.listed_files(con, "raw.iot__events")
        raw_parts.drop_runs(con, "raw.iot__events", "run_id = $run", {"run": r1}, apply=True)
        assert raw_parts.remove_unlisted(con, "raw.iot__events", listed) == 1
        assert _table(con, EVENTS) == [("e1", r2)]


def _sharing(tmp_path):
    """Warehouse ``a`` whose raw/ is a symbolic link to ``shared``, and ``b``, a ``cp -a`` copy of its folder
    (the link copied as a link: both reach one folder)."""
    shared, a, b = tmp_path / "shared", tmp_path / "a", tmp_path / "b"
    shared.mkdir()
    a.mkdir()
    (a / "raw").symlink_to(shared)
    w, runs = _two_runs(a)
    w.close()
    shutil.copytree(a, b, symlinks=True)
    return a, b, runs


def test_a_cp_a_copy_sharing_raw_through_a_link_never_deletes_the_originals_parts(tmp_path, caplog):
    a, b, (r1, r2) = _sharing(tmp_path)
    before = _parts_on_disk(a)
    with (
        caplog.at_level(logging.WARNING, logger=raw_parts.__name__),
        raw.connect(str(b / "wh.duckdb")) as con,
    ):
        listed = raw_parts.listed_files(con, "raw.iot__events")
        with transaction(con):
            raw_parts.drop_runs(con, "raw.iot__events", "run_id = $run", {"run": r1}, apply=True)
        assert raw_parts.remove_unlisted(con, "raw.iot__events", listed) == 0
        parts = RawParts(b / "raw", "iot", "events")
        assert parts.collect_garbage(con) == 0
        staged = parts.stage(pafs.LocalFileSystem(), _landed(tmp_path / "again", ["e9"]), r2, COLUMNS)
        with pytest.raises(SharedFolderError, match=r"belongs to the warehouse .*/a/wh\.duckdb.*cp -aL"):
            with transaction(con):
                parts.publish(con, staged)
    assert f"{a / 'wh.duckdb'}" in caplog.text and "cp -aL" in caplog.text
    parts = RawParts(a / "raw", "iot", "events")
    with raw.connect(str(a / "wh.duckdb")) as con:  # the owner: whole, and it cleans its folder as before
        assert _table(con, EVENTS) == [("e0", r1), ("e1", r2)]
        assert parts.collect_garbage(con) == 1  # b's staged folder, listed nowhere
    assert _parts_on_disk(a) == before


def test_two_warehouse_files_in_one_folder_share_raw_and_only_its_owner_cleans_it(tmp_path):
    w, (r1, _) = _two_runs(tmp_path)
    w.close()
    shutil.copyfile(tmp_path / "wh.duckdb", tmp_path / "other.duckdb")
    before = _parts_on_disk(tmp_path)
    with raw.connect(str(tmp_path / "other.duckdb")) as con:
        listed = raw_parts.listed_files(con, "raw.iot__events")
        with transaction(con):
            raw_parts.drop_runs(con, "raw.iot__events", "run_id = $run", {"run": r1}, apply=True)
        assert raw_parts.remove_unlisted(con, "raw.iot__events", listed) == 0
    assert _parts_on_disk(tmp_path) == before


def test_one_warehouse_file_reached_by_a_second_name_still_owns_its_raw_folder(tmp_path):
    """A hard link (or another letter case on a file system that ignores it) is the same warehouse: it
    must not be refused its own raw/ as if another warehouse owned it."""
    import os

    from islandbridge.landing.folder_owner import other_owner

    w, _ = _two_runs(tmp_path)
    w.close()
    os.link(tmp_path / "wh.duckdb", tmp_path / "WH.duckdb")
    with raw.connect(str(tmp_path / "WH.duckdb")) as con:
        assert other_owner(con, tmp_path / "raw") is None


def test_a_warehouse_without_the_marker_claims_its_raw_folder_at_its_first_write(tmp_path):
    w, _ = _two_runs(tmp_path)
    w.close()
    (tmp_path / "raw" / ".owner").unlink()
    with raw.connect(str(tmp_path / "wh.duckdb")):
        pass
    assert (tmp_path / "raw" / ".owner").read_text(encoding="utf-8").strip() == str(tmp_path / "wh.duckdb")


def test_a_legacy_row_written_on_windows_is_taken_as_its_tail_under_this_folder(tmp_path):
    w, runs = _two_runs(tmp_path)
    w.con.execute(
        "UPDATE meta.raw_parts SET file = 'C:\\srv\\islandbridge\\warehouse\\raw\\' || replace(file, '/', '\\') "
        "WHERE file <> ''"
    )
    w.close()
    with raw.connect(str(tmp_path / "wh.duckdb")) as con:
        files = [f for (f,) in con.execute("SELECT file FROM meta.raw_parts WHERE file <> ''").fetchall()]
        assert len(files) == 2 and all(f.startswith("iot__events/_run_id=") for f in files)
        assert _table(con, EVENTS) == [("e0", runs[0]), ("e1", runs[1])]
        assert raw_parts.views_elsewhere(con, tmp_path / "raw") == []
