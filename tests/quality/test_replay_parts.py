"""Replaying a quarantined event of an event log kept as Parquet parts (``raw.iot__events`` is a view):
the event becomes one more listed part of its run, exactly once, and the accounting follows."""

from __future__ import annotations

from islandbridge.quality.commands import quarantine_list, quarantine_replay
from islandbridge.quality.quarantine import GATE

from .conftest import set_values

DAY, RUN, IOT = "2026-11-20", "ib_20261120T160000Z", ["iot"]
ACCEPT_TYPE = {"checks": {"iot.events.type_known": {"severity": "warning"}}}


def _counts(ws) -> tuple[int, int, int, int]:
    return ws.query(
        "SELECT read, landed, quarantined, duplicates FROM meta.run_sources "
        "WHERE run_id = ? AND source = 'iot' AND stream = 'events'",
        [RUN],
    )[0]


def _event(ws, key: str) -> list[tuple]:
    return ws.query("SELECT _run_id, type FROM raw.iot__events WHERE _record_key = ?", [key])


def test_replay_adds_a_fixed_event_to_the_parts_view_exactly_once(workspace_factory):
    ws = workspace_factory("parts-replay")
    ws.extract(DAY, IOT)
    key = ws.landed(DAY, "iot", "events")["_record_key"][0].as_py()
    ws.edit(DAY, "iot", "events", set_values({key: {"type": "teleport"}}))
    gate = ws.gate(DAY, IOT)
    ws.load(DAY, IOT)
    assert gate.excluded_keys["iot"]["events"] == [key]
    assert ws.query("SELECT table_type FROM information_schema.tables WHERE table_name = 'iot__events'") == [
        ("VIEW",)
    ]
    total, before = ws.query("SELECT count(*) FROM raw.iot__events")[0][0], _counts(ws)
    assert _event(ws, key) == []

    assert quarantine_replay(ws.settings, "iot") == {"checked": 1, "loaded": 0, "still_failing": 1}
    assert quarantine_replay(ws.settings, "iot", quality_config=ACCEPT_TYPE) == {
        "checked": 1,
        "loaded": 1,
        "still_failing": 0,
    }
    assert _event(ws, key) == [(RUN, "teleport")]
    read, landed, quarantined, duplicates = after = _counts(ws)
    assert (landed, quarantined) == (
        before[1] + 1,
        before[2] - 1,
    ) and read == landed + quarantined + duplicates
    assert ws.query("SELECT count(*) FROM raw.iot__events")[0][0] == total + 1
    # Nothing of the gate's is left to replay (the connector's broken-clock events stay listed: not replayable).
    assert [e for e in quarantine_list(ws.settings) if e.stage == GATE] == []

    listed = ws.query("SELECT file FROM meta.raw_parts WHERE relation = 'raw.iot__events' ORDER BY file")
    assert quarantine_replay(ws.settings, "iot", quality_config=ACCEPT_TYPE) == {
        "checked": 0,
        "loaded": 0,
        "still_failing": 0,
    }
    assert _counts(ws) == after and _event(ws, key) == [(RUN, "teleport")]
    assert (
        ws.query("SELECT file FROM meta.raw_parts WHERE relation = 'raw.iot__events' ORDER BY file") == listed
    )

    ws.sync("2026-11-21", IOT)  # the next load's garbage collection keeps the replayed part
    assert _event(ws, key) == [(RUN, "teleport")]
