"""The owner marker of a raw/ or events/ folder (`landing.folder_owner`) leaves no temporary file behind: a
writer killed between writing ``.owner.tmp-<pid>`` and its rename is cleaned up by the next claim."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import pytest

from islandbridge.landing import folder_owner
from islandbridge.landing.folder_owner import MARKER, claim, is_marker


def _left(path, text: str) -> None:
    """``path`` written with ``text`` two minutes ago, as a writer killed before its rename left it."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, (time.time() - 120, time.time() - 120))


def _dead_pid() -> int:
    """The id of a process that has ended (and was reaped): no process of it runs now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:
        yield con


def test_a_claim_removes_the_temporary_marker_a_killed_writer_left_and_keeps_a_running_ones(tmp_path, con):
    folder = tmp_path / "raw"
    folder.mkdir()
    _left(folder / f"{MARKER}.tmp-{_dead_pid()}", "/elsewhere/wh.duckdb\n")
    running = folder / f"{MARKER}.tmp-{os.getppid()}"  # a writer between its write and its rename
    _left(running, "/elsewhere/wh.duckdb\n")
    # just written: perhaps by a writer in another container, whose process id this one cannot see
    just_written = folder / f"{MARKER}.tmp-{_dead_pid()}"
    just_written.write_text("/elsewhere/wh.duckdb\n", encoding="utf-8")
    assert claim(con, folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, running.name, just_written.name])
    assert (folder / MARKER).read_text(encoding="utf-8").strip() == str(tmp_path / "wh.duckdb")


def test_the_stale_temporary_marker_goes_also_when_the_marker_already_names_this_warehouse(tmp_path, con):
    folder = tmp_path / "events"
    folder.mkdir()
    assert claim(con, folder)
    _left(folder / f"{MARKER}.tmp-{_dead_pid()}", f"{tmp_path / 'wh.duckdb'}\n")
    assert claim(con, folder)
    assert [p.name for p in folder.iterdir()] == [MARKER]


def test_a_temporary_marker_whose_name_holds_no_process_id_does_not_stop_a_claim(tmp_path, con):
    """Hand-made names never raise out of the claim (an OverflowError, a ValueError): a number beyond any
    process id is no running writer's, removed when old; a name without an ASCII number is not a writer's
    marker at all, and stays."""
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in ("9" * 30, "²", "x1"):
        _left(folder / f"{MARKER}.tmp-{name}", "/elsewhere/wh.duckdb\n")
    assert claim(con, folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, f"{MARKER}.tmp-x1", f"{MARKER}.tmp-²"])


def test_a_marker_write_that_fails_leaves_no_temporary_file(tmp_path, con, monkeypatch):
    folder = tmp_path / "raw"
    folder.mkdir()

    def full_disk(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder_owner.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        claim(con, folder)
    assert list(folder.iterdir()) == []


def test_the_marker_and_a_marker_being_written_are_no_data_files(tmp_path):
    assert is_marker(tmp_path / MARKER) and is_marker(tmp_path / f"{MARKER}.tmp-123")
    assert not is_marker(tmp_path / "day=2026-11-20" / "part-0.parquet")
