"""A synced run folder copied elsewhere (``cp -a``, a restored backup, a move) is a warehouse of its own: it
reads and prunes its own raw parts, and the original stays whole (QA: the copy's prune deleted the
original's oldest parts, and the original's next query and sync failed)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from islandbridge.cli import main
from islandbridge.config import parse_as_of
from islandbridge.landing.raw_parts import MissingPartError
from islandbridge.pipeline import load_settings, prune, sync
from tests.helpers import warehouse
from tests.test_retention import _with

DAYS = ("2026-11-17", "2026-11-18", "2026-11-19")
FIRST_RUN = "ib_20261117T160000Z"


def _parts(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in (folder / "warehouse" / "raw").rglob("*.parquet"))


def _events(config) -> list[tuple]:
    with warehouse(config) as con:
        return con.execute("SELECT _run_id, count(*) FROM raw.iot__events GROUP BY 1 ORDER BY 1").fetchall()


@pytest.mark.slow
def test_a_copied_run_folder_prunes_its_own_parts_and_both_still_sync(config, tmp_path_factory, capsys):
    for day in DAYS[:2]:
        sync(load_settings(config, os.environ), parse_as_of(day))
    original = config.parent
    copy = tmp_path_factory.mktemp("copy") / "run"
    shutil.copytree(original, copy, symlinks=True)
    copied = copy / config.name
    before, events = _parts(original), _events(config)
    assert events[0][0] == FIRST_RUN

    assert main(["sql", "--config", str(copied), "SELECT DISTINCT file FROM meta.raw_parts"]) == 0
    assert str(original) not in capsys.readouterr().out
    with warehouse(config) as con:
        kept = con.execute("SELECT count(*) FROM core.device_events").fetchall()[0][0]
    away = original.with_name("away")
    original.rename(away)  # the copy's views read the copy's files, not the original's
    try:
        for view, n in (("raw.iot__events", sum(n for _, n in events)), ("core.device_events", kept)):
            assert main(["sql", "--config", str(copied), f"SELECT count(*) AS n FROM {view}"]) == 0
            assert re.search(rf"│\s*{n}\s*│", capsys.readouterr().out), view
    finally:
        away.rename(original)
    _with(copied, retention={"days": 1})
    removed = prune(load_settings(copied, os.environ), apply=True)["removed"]
    assert removed["raw_device_events"] > 0

    assert _parts(original) == before and _events(config) == events  # the original is whole
    assert len(_parts(copy)) < len(before)
    assert _events(copied) == events[1:]
    for folder in (config, copied):  # and both go on syncing
        sync(load_settings(folder, os.environ), parse_as_of(DAYS[2]))
    assert _events(config)[: len(events)] == events
    assert FIRST_RUN not in {r[0] for r in _events(copied)}


@pytest.mark.slow
def test_a_copy_with_a_lost_part_answers_sql_refuses_a_sync_and_prune_drops_the_run(config, tmp_path_factory):
    """Not a circle: the sync's error advises prune --apply, and prune (a write connection) runs; the sync
    refuses until then, as its event log would silently lose the run's rows."""
    for day in DAYS[:2]:
        sync(load_settings(config, os.environ), parse_as_of(day))
    copy = tmp_path_factory.mktemp("copy") / "run"
    shutil.copytree(config.parent, copy, symlinks=True)
    copied = copy / config.name
    (gone, *_) = [p for p in (copy / "warehouse" / "raw").rglob("*.parquet") if FIRST_RUN in str(p)]
    gone.unlink()
    assert main(["sql", "--config", str(copied), "SELECT count(*) FROM raw.iot__events"]) == 0
    with pytest.raises(MissingPartError, match=f"_run_id={FIRST_RUN}/.*prune --apply"):
        sync(load_settings(copied, os.environ), parse_as_of(DAYS[2]))
    _with(copied, retention={"days": 1})
    assert prune(load_settings(copied, os.environ), apply=True)["removed"]["raw_device_events"] > 0
    sync(load_settings(copied, os.environ), parse_as_of(DAYS[2]))
    assert FIRST_RUN not in {r[0] for r in _events(copied)}
