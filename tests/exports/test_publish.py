"""Publishing a day: never half-visible, replaced whole, and nothing published without its audit entry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import duckdb
import pytest

from islandbridge.delivery.export import export_run
from islandbridge.privacy.audit import AuditLog
from tests.exports.support import AS_OF, DAY, RUN_ID


def export(settings, clock=None):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return export_run(settings, con, AS_OF, RUN_ID, clock=clock or (lambda: dt.datetime.now(dt.UTC)))


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_previous_day_stays_whole_and_visible_while_the_next_is_staged(settings):
    export(settings)
    final = settings.exports_dir / "grid_centre" / DAY
    old = snapshot(final)
    seen = []

    def clock():  # called while each day is staged (made_at) and audited, before its swap
        if list(final.parent.glob(f".{DAY}.tmp-*")):  # the grid centre's new day is being staged
            seen.append(snapshot(final) == old)
        return dt.datetime.now(dt.UTC)

    with duckdb.connect(str(settings.warehouse_path)) as rw:
        rw.execute("UPDATE marts.elderly_alerts SET hours_silent = hours_silent + 1")
    export(settings, clock)
    assert seen == [True, True]  # at made_at and at the audit entry
    assert snapshot(final) != old
    manifest = json.loads((final / "manifest.json").read_text(encoding="utf-8"))
    assert {f["name"] for f in manifest["files"]} | {"manifest.json"} == set(snapshot(final))


def test_a_failure_before_the_swap_leaves_the_previous_export_and_no_stage(settings):
    export(settings)
    before = snapshot(settings.exports_dir)
    blocked = dataclasses.replace(settings, audit_path=settings.audit_path.parent)  # a folder: cannot append
    with pytest.raises(OSError):
        export(blocked)
    assert snapshot(settings.exports_dir) == before
    assert list(settings.exports_dir.rglob(".*")) == []


def test_nothing_is_published_unless_its_audit_entry_was_written(settings):
    blocked = dataclasses.replace(settings, audit_path=settings.audit_path.parent)
    settings.audit_path.parent.mkdir(parents=True, exist_ok=True)
    with pytest.raises(OSError):
        export(blocked)
    assert not (settings.exports_dir / "civil_affairs" / DAY).exists()


def test_leftovers_of_a_killed_exporter_are_cleared(settings):
    stale = settings.exports_dir / "grid_centre" / f".{DAY}.tmp-0badc0de"
    stale.mkdir(parents=True)
    (stale / "elderly_alerts.csv").write_text("half", encoding="utf-8")
    export(settings)
    assert not stale.exists()
    assert [p.name for p in stale.parent.iterdir()] == [DAY]


def test_each_department_export_is_one_audit_entry_per_revealing_report_and_the_chain_holds(settings):
    summary = export(settings)
    export(settings)
    log = AuditLog(settings.audit_path)
    verified = log.verify(expected_head=summary["audit_head"])
    assert verified.ok and verified.entries == 8


@pytest.mark.parametrize("atomic_exchange", [True, False], ids=["renameat2", "two-renames"])
def test_swapping_in_replaces_the_old_folder_whole(tmp_path, atomic_exchange):
    from islandbridge.delivery.durable import exchange_paths, swap_dirs

    final, stage = tmp_path / DAY, tmp_path / f".{DAY}.tmp-00000000"
    final.mkdir()
    (final / "old.csv").write_text("old", encoding="utf-8")
    stage.mkdir()
    (stage / "new.csv").write_text("new", encoding="utf-8")
    swap_dirs(stage, final, exchange=exchange_paths if atomic_exchange else (lambda a, b: False))
    assert [p.name for p in final.iterdir()] == ["new.csv"]
    assert [p.name for p in stage.iterdir()] == ["old.csv"]  # the caller deletes the old folder
