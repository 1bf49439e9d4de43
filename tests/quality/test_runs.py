"""The gate across runs: a source that returns far fewer records than before stops the run, and a row
quarantined for a house the registry did not have yet loads, exactly once, when replayed after the fix."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

import pytest

from islandbridge.quality import QualityGateError
from islandbridge.quality.commands import quarantine_list, quarantine_replay

REGISTRY = ["registry"]


def _registry(ws) -> sqlite3.Connection:
    return sqlite3.connect(ws.street / "registry" / "rrs.sqlite")


def test_a_source_returning_half_its_records_stops_the_run(workspace_factory):
    ws = workspace_factory("drop", private=True)
    first = ws.sync("2026-11-19", REGISTRY)
    assert next(r for r in first.results if r.name == "registry.t_jm.volume").observed == {
        "baseline": "none yet"
    }
    with _registry(ws) as db:
        db.execute(
            "DELETE FROM t_jm WHERE jmid IN (SELECT jmid FROM t_jm ORDER BY jmid LIMIT "
            "(SELECT count(*) / 2 FROM t_jm))"
        )
    ws.extract("2026-11-20", REGISTRY)
    digest = hashlib.sha256(ws.settings.warehouse_path.read_bytes()).hexdigest()
    with pytest.raises(QualityGateError) as caught:
        ws.gate("2026-11-20", REGISTRY)
        ws.load("2026-11-20", REGISTRY)
    message, (volume,) = str(caught.value), caught.value.result.critical_failures
    assert "registry.t_jm.volume" in message and f"kept_share={volume.observed['kept_share']}" in message
    assert 0.45 < volume.observed["kept_share"] < 0.55 and "min_kept_share=0.7" in message
    assert hashlib.sha256(ws.settings.warehouse_path.read_bytes()).hexdigest() == digest

    stopped = Path(ws.base("2026-11-20", "registry"))  # kept, owner-only, to be validated again
    assert stopped.is_dir() and stat.S_IMODE(stopped.stat().st_mode) == 0o700
    ws.sync("2026-11-21", REGISTRY, {"checks": {"registry.t_jm.volume": {"severity": "warning"}}})
    assert not stopped.parent.exists(), "a later run's load removes the stopped run's slice"


def test_sync_json_prints_the_gates_result_when_it_stops_the_run(workspace_factory, monkeypatch, capsys):
    """`sync --json` printed nothing on a gate stop (validate --json prints the gate's result): it prints
    its own summary as far as it got, the gate's result under ``quality``; exit 5, the message on stderr."""
    import json

    from islandbridge.cli import main

    ws = workspace_factory("sync-json", private=True)
    ws.sync("2026-11-19", REGISTRY)
    with _registry(ws) as db:
        db.execute(
            "DELETE FROM t_jm WHERE jmid IN (SELECT jmid FROM t_jm ORDER BY jmid LIMIT "
            "(SELECT count(*) / 2 FROM t_jm))"
        )
    for name, value in ws.environ.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    argv = ["sync", "--as-of", "2026-11-20", "--source", "registry", "--json", "--config", str(ws.config)]
    assert main(argv) == 5
    out, err = capsys.readouterr()
    assert err.count("quality gate stopped run") == 1
    printed = json.loads(out)
    assert printed["run_id"] == "ib_20261120T160000Z" and printed["as_of"] == "2026-11-21T00:00:00+08:00"
    gate = printed["quality"]
    assert gate["passed"] is False and gate["critical"] == ["registry.t_jm.volume"]
    assert Path(gate["report"]).is_file()


def test_a_next_run_checks_volume_and_references_against_the_warehouse_too(workspace_factory):
    """The second run lands only changed residents; their houses were landed by the first run."""
    ws = workspace_factory("steady", private=True)
    ws.sync("2026-11-19", REGISTRY)
    ws.extract("2026-11-20", REGISTRY)
    houses_now = set(ws.landed("2026-11-20", "registry", "t_fw")["fwbh"].to_pylist())
    residents = ws.landed("2026-11-20", "registry", "t_jm").to_pylist()
    assert residents and any(r["fwbh"] not in houses_now for r in residents)
    gate = ws.gate("2026-11-20", REGISTRY)
    volume = {r.stream: r for r in gate.results if r.check == "volume"}
    assert all(r.success for r in volume.values()) and volume["t_jm"].observed["kept_share"] >= 1.0
    assert gate.passed and gate.quarantined == {}


def test_a_next_run_still_quarantines_a_reference_neither_landed_nor_in_the_warehouse(workspace_factory):
    """On a next run the landed residents' houses are looked up in the day's landing and in the warehouse:
    residents naming houses of the first run pass, the one naming a house nobody has is set aside (a guard
    for any change that narrows the reference keys to follow the day's rows)."""
    ws = workspace_factory("narrowed", private=True)
    ws.sync("2026-11-19", REGISTRY)
    with _registry(ws) as db:
        jmid = db.execute("SELECT jmid FROM t_jm ORDER BY jmid LIMIT 1").fetchone()[0]
        db.execute("UPDATE t_jm SET fwbh = 'FW9999998', gxsj = '2026-11-20 10:00:00' WHERE jmid = ?", [jmid])
    ws.extract("2026-11-20", REGISTRY)
    residents = ws.landed("2026-11-20", "registry", "t_jm").to_pylist()
    houses_now = set(ws.landed("2026-11-20", "registry", "t_fw")["fwbh"].to_pylist())
    from_warehouse = [r for r in residents if r["fwbh"] not in houses_now and r["fwbh"] != "FW9999998"]
    assert from_warehouse, "the test needs residents whose house only the warehouse has"
    gate = ws.gate("2026-11-20", REGISTRY)
    house = next(r for r in gate.results if r.name == "registry.t_jm.house_exists")
    assert (house.element_count, house.unexpected_count) == (len(residents), 1)
    assert gate.excluded_keys == {"registry": {"t_jm": [f"t_jm:{jmid}"]}}


def test_a_load_that_brings_a_missing_reference_says_the_rows_awaiting_a_replay(workspace_factory, caplog):
    """A resident set aside only because its house was not there: the load that lands the house says one
    row now finds it and names the command; the replay loads it under its own run, once. A row that also
    failed another check is not counted."""
    ws = workspace_factory("replay", private=True)
    with _registry(ws) as db:
        (jmid,), (other,) = db.execute("SELECT jmid FROM t_jm ORDER BY jmid LIMIT 2").fetchall()
        db.execute("UPDATE t_jm SET fwbh = 'FW9999999' WHERE jmid IN (?, ?)", [jmid, other])
        db.execute("UPDATE t_jm SET xb = '9' WHERE jmid = ?", [other])
    key = f"t_jm:{jmid}"
    gate = ws.sync("2026-11-20", REGISTRY)
    assert gate.excluded_keys == {"registry": {"t_jm": [key, f"t_jm:{other}"]}}
    assert quarantine_replay(ws.settings, "registry") == {"checked": 2, "loaded": 0, "still_failing": 2}

    with _registry(ws) as db:  # the fix at the source: the registry gets the house; the next sync lands it
        db.execute(
            "INSERT INTO t_fw SELECT 'FW9999999', xqbm, ld, dy, '9999', wgbm, '2026-11-21 09:00:00' "
            "FROM t_fw LIMIT 1"
        )
    ws.extract("2026-11-21", REGISTRY)
    ws.gate("2026-11-21", REGISTRY)
    caplog.clear()
    loaded = ws.load("2026-11-21", REGISTRY)
    assert loaded["references_ready"] == {"registry": {"ready": 1, "waiting": 0}}
    assert (
        "registry: 1 row quarantined only for a missing reference now finds it and awaits a replay "
        "(`islandbridge quarantine replay registry` loads it under its own run)" in caplog.text
    )
    assert quarantine_replay(ws.settings, "registry") == {"checked": 2, "loaded": 1, "still_failing": 1}
    assert quarantine_replay(ws.settings, "registry") == {"checked": 1, "loaded": 0, "still_failing": 1}
    ws.extract("2026-11-22", REGISTRY)
    ws.gate("2026-11-22", REGISTRY)
    assert "references_ready" not in ws.load("2026-11-22", REGISTRY)  # the other row failed xb_known too
    assert [e.record_key for e in quarantine_list(ws.settings)] == [f"t_jm:{other}"]

    assert ws.query("SELECT _run_id FROM raw.registry__t_jm WHERE _record_key = ?", [key]) == [
        ("ib_20261120T160000Z",)
    ]
    read, landed, quarantined, duplicates = ws.query(
        "SELECT read, landed, quarantined, duplicates FROM meta.run_sources "
        "WHERE run_id = 'ib_20261120T160000Z' AND source = 'registry' AND stream = 't_jm'"
    )[0]
    assert read == landed + quarantined + duplicates and quarantined == 1
    replayed = [e.record_key for e in quarantine_list(ws.settings, include_replayed=True) if e.replayed_at]
    assert replayed == [key]


def test_the_recheck_after_a_load_opens_the_warehouse_once_for_every_source(workspace_factory, monkeypatch):
    """`references_ready` re-checks the rows of every source on one DuckDB connection, not one per source,
    and counts what it counted before: a resident whose house is missing is still waiting."""
    from islandbridge import storage
    from islandbridge.quality.replay import references_ready

    ws = workspace_factory("recheck", private=True)
    with _registry(ws) as db:
        db.execute("UPDATE t_jm SET fwbh = 'FW9999999' WHERE jmid = (SELECT min(jmid) FROM t_jm)")
    ws.sync("2026-11-20", REGISTRY)
    opened, connect = [], storage.connect
    monkeypatch.setattr(storage, "connect", lambda *a, **kw: opened.append(a) or connect(*a, **kw))
    sources = list(ws.settings.sources)
    found = references_ready(ws.settings, sources, clock=lambda: None)
    assert found == {"registry": {"ready": 0, "waiting": 1}}
    assert len(sources) > 1 and len(opened) == 1


def test_a_recheck_that_fails_leaves_the_committed_load_standing(workspace_factory, monkeypatch, caplog):
    """The re-check of rows awaiting a reference runs after the load's commit and only advises: if it
    fails (a row sealed under a key no longer held, a stream gone from the schemas), the load still
    returns, and a warning says the re-check could not run."""
    from islandbridge.pipeline import notices

    def broken(*_args, **_kwargs):
        raise KeyError("t_old")

    ws = workspace_factory()
    ws.extract("2026-11-20", REGISTRY)
    ws.gate("2026-11-20", REGISTRY)
    monkeypatch.setattr(notices, "references_ready", broken)
    loaded = ws.load("2026-11-20", REGISTRY)
    assert loaded["run_id"] == "ib_20261120T160000Z" and "references_ready" not in loaded
    assert ws.query("SELECT status FROM meta.runs") == [("loaded",)]
    assert any("could not be re-checked" in r.getMessage() for r in caplog.records)


def test_a_load_reads_each_source_landing_manifest_once(workspace_factory, monkeypatch):
    """The load reads each source's landing manifest once, for all its uses (the known names it scrubs
    with, the check that every extract is complete, the source's own load), not once per use."""
    from islandbridge.landing import raw

    sources = ["registry", "civil"]
    ws = workspace_factory()
    ws.extract("2026-11-20", sources)
    ws.gate("2026-11-20", sources)
    reads, read_manifest = [], raw.read_manifest
    monkeypatch.setattr(
        raw, "read_manifest", lambda fs, base, *a: reads.append(a[0]) or read_manifest(fs, base, *a)
    )
    loaded = ws.load("2026-11-20", sources)
    assert sorted(loaded["sources"]) == sorted(sources)
    assert sorted(reads) == sorted(sources)
