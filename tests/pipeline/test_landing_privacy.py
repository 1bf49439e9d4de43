"""Least privilege in the landing zone: owner-only as written, a failed extraction's slice removed, a
stopped run's slice gone once a later run has loaded."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest

from islandbridge import pipeline
from islandbridge.config import Settings, SourceSettings
from islandbridge.connectors.base import Stream
from islandbridge.errors import FatalSourceError
from islandbridge.landing import raw
from islandbridge.landing.zone import LandingWriter, remove_abandoned

PEOPLE = Stream("people", "pid", ("pid", "name", "id_number"), person_bearing=True)
AS_OF = dt.datetime(2026, 11, 21, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root):
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def test_every_landed_folder_and_file_is_owner_only_quarantine_included(tmp_path, loose_umask):
    root = tmp_path / "landing"
    root.mkdir(mode=0o755)
    writer = LandingWriter.open(root.as_uri(), "ib_1", "civil", [PEOPLE])
    writer.read("people", 2)
    writer.write("people", [{"pid": 1, "name": "张小伟", "id_number": "511403194510310077"}])
    writer.quarantine("people", "people:2", "序号 blank", {"name": "李四", "phone": "13800138000"})
    writer.close({})
    found = modes(root)
    assert "ib_1/civil/_quarantine/part-00000.parquet" in found and "ib_1/civil/_manifest.json" in found
    assert {p: m for p, m in found.items() if m not in (0o600, 0o700)} == {}
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert all(m == 0o700 for p, m in found.items() if (root / p).is_dir())


class Crashing:
    """A connector that lands a row with identifiers, quarantines one, then fails."""

    def streams(self):
        return [PEOPLE]

    def describe(self):
        return "crashing"

    def extract(self, ctx):
        ctx.sink.read("people", 2)
        ctx.sink.write("people", [{"pid": 1, "name": "张小伟", "id_number": "511403194510310077"}])
        ctx.sink.quarantine("people", "people:2", "bad", {"name": "李四"})
        raise FatalSourceError("the source broke its contract half-way")


def test_a_failed_extraction_leaves_no_slice_behind(tmp_path, monkeypatch):
    settings = Settings(
        street_code="511403001",
        landing_url=(tmp_path / "landing").as_uri(),
        warehouse_path=tmp_path / "warehouse" / "warehouse.duckdb",
        state_dir=tmp_path / "state",
        sources={"civil": SourceSettings("civil", "civil_files", {})},
    )
    monkeypatch.setattr(pipeline.steps, "build_connector", lambda source: Crashing())
    with pytest.raises(FatalSourceError, match="half-way"):
        pipeline.extract(settings, "civil", AS_OF)
    assert list((tmp_path / "landing").rglob("*")) == []


def test_slices_of_earlier_runs_are_removed_once_a_later_run_has_loaded(tmp_path):
    url = (tmp_path / "landing").as_uri()
    stopped, now, later = (raw.run_id_for(AS_OF + dt.timedelta(days=d)) for d in (-1, 0, 1))
    for run_id in (stopped, now, later):
        writer = LandingWriter.open(url, run_id, "civil", [PEOPLE])
        writer.read("people")
        writer.write("people", [{"pid": 1, "name": "张小伟"}])
        writer.close({})
    assert remove_abandoned(url, now) == [stopped]
    assert sorted(p.name for p in (tmp_path / "landing").iterdir()) == [now, later]
