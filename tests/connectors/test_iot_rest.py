"""The IoT platform connector against the simulated platform (a real server on loopback)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from islandbridge.config import Secret, SourceSettings, parse_as_of
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.devtools.simulator.servers import IotServer
from islandbridge.errors import FatalSourceError, RetriableError
from islandbridge.landing.zone import LandingWriter
from tests.conftest import AS_OF, IOT_KEY
from tests.connectors.support import FakeTime, Tripwire

AS_OF_END = parse_as_of(AS_OF.isoformat())
AS_OF_MS = int(AS_OF_END.timestamp() * 1000)
DAY_MS = 86_400_000


def connector(server: IotServer, fake: FakeTime | None = None, **options):
    settings = SourceSettings(
        "iot",
        "iot_rest",
        {
            "base_url": server.base_url,
            "api_key": Secret(IOT_KEY, "test"),
            **options,
        },
    )
    iot = build_connector(settings)
    iot.pacing = (fake or FakeTime()).pacing()
    return iot


def run(iot, root: Path, run_id: str, state=None, wrap=None):
    """One extraction into the landing zone: ``(state, manifest)``."""
    writer = LandingWriter.open(root.as_uri(), run_id, "iot", iot.streams())
    sink = wrap(writer) if wrap else writer
    new_state = iot.extract(ExtractContext(run_id, AS_OF_END, state or {}, sink))
    return new_state, writer.close(new_state)


def landed_keys(root: Path, run_id: str, stream: str) -> list[str]:
    return sorted(pq.read_table(root / run_id / "iot" / stream).column("_record_key").to_pylist())


def quarantined(root: Path, run_id: str) -> dict[str, str]:
    rows = pq.read_table(root / run_id / "iot" / "_quarantine").to_pylist()
    return {r["_record_key"]: r["reason"] for r in rows}


def log_events(street_dir: Path) -> list[dict]:
    lines = (street_dir / "iot" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def event(ts: int, n: int) -> dict:
    return {
        "event_id": f"00000000-0000-4000-8000-{n:012d}",
        "ts": ts,
        "device_id": "DR000001",
        "type": "access_granted",
        "holder_id": "H0000001",
        "value": None,
        "alarm_code": None,
    }


def test_full_extraction_lands_devices_holders_and_each_good_event_once(iot_server, street_dir, tmp_path):
    """Devices and holders land whole; every distinct event lands once unless its clock is broken."""
    _, manifest = run(connector(iot_server), tmp_path, "r1")
    for stream, key in (("devices", "device_id"), ("cardholders", "holder_id")):
        items = json.loads((street_dir / "iot" / f"{stream}.json").read_text(encoding="utf-8"))
        assert landed_keys(tmp_path, "r1", stream) == sorted(f"{stream}:{i[key]}" for i in items)
    events = log_events(street_dir)
    distinct = {e["event_id"]: e for e in events}
    broken = {i for i, e in distinct.items() if not 946_684_800_000 <= e["ts"] <= AS_OF_MS + DAY_MS}
    assert landed_keys(tmp_path, "r1", "events") == sorted(f"events:{i}" for i in set(distinct) - broken)
    counts = manifest["streams"]["events"]
    assert (counts["read"], counts["quarantined"]) == (len(events), len(broken))


def test_repeated_event_ids_are_counted_as_duplicates(iot_server, street_dir, tmp_path):
    """The log delivers at least once: a repeated event_id is counted, not landed twice."""
    _, manifest = run(connector(iot_server, page_limit=1000), tmp_path, "r1")
    repeats = sum(n - 1 for n in Counter(e["event_id"] for e in log_events(street_dir)).values())
    assert repeats > 0
    keys = landed_keys(tmp_path, "r1", "events")
    assert len(keys) == len(set(keys))
    assert manifest["streams"]["events"]["duplicates"] == repeats


def test_broken_clock_events_are_quarantined_with_the_rule_and_late_ones_landed(iot_server, tmp_path):
    """ts=0, a 1990 ts and a ts two days after the as-of are quarantined; a three-day-late event lands."""
    state, _ = run(connector(iot_server), tmp_path, "r1")
    iot_server.append_events(
        [
            event(0, 1),
            event(631_152_000_000, 2),
            event(AS_OF_MS + 2 * DAY_MS, 3),
            event(AS_OF_MS - 3 * DAY_MS, 4),
        ]
    )
    run(connector(iot_server), tmp_path, "r2", state=state)
    reasons = quarantined(tmp_path, "r2")
    assert "ts=0" in reasons[f"events:{event(0, 1)['event_id']}"]
    assert "before 2000-01-01" in reasons[f"events:{event(0, 2)['event_id']}"]
    assert "more than 1 day after the as-of" in reasons[f"events:{event(0, 3)['event_id']}"]
    assert landed_keys(tmp_path, "r2", "events") == [f"events:{event(0, 4)['event_id']}"]


def test_resuming_from_the_cursor_reads_only_new_events(iot_server, tmp_path):
    """The returned cursor resumes where the last run stopped: only appended events are read."""
    iot = connector(iot_server)
    state, _ = run(iot, tmp_path, "r1")
    assert state["events"]["cursor"]
    iot_server.append_events([event(AS_OF_MS - 1000 * n, n) for n in range(1, 4)])
    state2, manifest = run(iot, tmp_path, "r2", state=state)
    assert manifest["streams"]["events"]["read"] == 3
    assert landed_keys(tmp_path, "r2", "events") == sorted(
        f"events:{event(0, n)['event_id']}" for n in (1, 2, 3)
    )
    assert state2["events"]["cursor"] != state["events"]["cursor"]


def test_rerun_of_an_unchanged_platform_lands_nothing(iot_server, tmp_path):
    """Devices unchanged, holders at the boundary and an exhausted log: the second run lands no rows."""
    iot = connector(iot_server)
    state, _ = run(iot, tmp_path, "r1")
    _, manifest = run(iot, tmp_path, "r2", state=state)
    assert {s: c["landed"] for s, c in manifest["streams"].items()} == {
        "devices": 0,
        "cardholders": 0,
        "events": 0,
    }
    assert manifest["streams"]["cardholders"]["duplicates"] == len(state["cardholders"]["boundary"])


def test_an_edited_cardholder_is_landed_in_the_next_run(iot_server, tmp_path):
    """An edit moves the holder past the watermark; the next run lands exactly that version."""
    iot = connector(iot_server, holder_page=50)
    state, _ = run(iot, tmp_path, "r1")
    iot_server.edit_cardholder("H0000002", phone="13900000000")
    _, manifest = run(iot, tmp_path, "r2", state=state)
    assert landed_keys(tmp_path, "r2", "cardholders") == ["cardholders:H0000002"]


def test_crash_mid_log_then_rerun_from_old_state_lands_what_an_uninterrupted_run_lands(iot_server, tmp_path):
    """The cursor is only returned with the landed data: a crash re-reads from the old cursor, losing nothing."""
    fake = FakeTime()
    iot = connector(iot_server, fake, page_limit=1000, max_attempts=3)
    state, _ = run(iot, tmp_path, "r1")
    # Ten pages, the faults set off on the second: pages are fetched at most a few ahead (prefetch), so
    # a later page still meets them.
    iot_server.append_events([event(AS_OF_MS - 1000 * n, n) for n in range(1, 10_001)])
    _, clean = run(iot, tmp_path, "clean", state=state)

    def fail_the_log():  # gateway errors that outlast the retry budget, mid-log
        iot_server.inject_faults(503, count=3, path_prefix="/iot/v1/events")

    with pytest.raises(RetriableError, match="/iot/v1/events"):
        run(iot, tmp_path, "r2", state=state, wrap=lambda s: Tripwire(s, "events", 1500, fail_the_log))
    _, again = run(iot, tmp_path, "r2", state=state)
    assert landed_keys(tmp_path, "r2", "events") == landed_keys(tmp_path, "clean", "events")
    assert again["streams"]["events"] == clean["streams"]["events"]


def test_json_503_is_retried_then_succeeds(iot_server, tmp_path):
    """The platform's 503 (a JSON body, unlike the grid gateway's HTML) is transient."""
    fake = FakeTime()
    iot_server.inject_faults(503, count=2, path_prefix="/iot/v1/devices")
    run(connector(iot_server, fake), tmp_path, "r1")
    assert len(fake.sleeps) == 2
    assert [r.status for r in iot_server.requests if r.path.endswith("devices")] == [503, 503, 200]


def test_429_waits_for_retry_after(iot_server, tmp_path):
    """A 429's Retry-After is what the connector sleeps before asking again."""
    fake = FakeTime()
    iot_server.throttle_next(1, retry_after=2)
    run(connector(iot_server, fake), tmp_path, "r1")
    assert fake.sleeps == [2.0]


def test_wrong_api_key_is_fatal_without_echoing_the_key(iot_server, tmp_path):
    """HTTP 403 is a FatalSourceError naming the endpoint and status, never the key."""
    iot = connector(iot_server, api_key=Secret("not-the-key-77", "test"))
    with pytest.raises(FatalSourceError) as caught:
        run(iot, tmp_path, "r1")
    assert "HTTP 403" in str(caught.value) and "/iot/v1/devices" in str(caught.value)
    assert "not-the-key-77" not in str(caught.value)


def test_logs_carry_no_api_key_or_personal_data(iot_server, street_dir, tmp_path, caplog):
    """A full run at DEBUG, with retries, logs neither the key nor holders' names or phones."""
    caplog.set_level(logging.DEBUG)
    iot_server.throttle_next(1, retry_after=1)
    iot_server.inject_faults(503, count=1)
    run(connector(iot_server), tmp_path, "r1")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/iot/v1/events" in text
    holders = json.loads((street_dir / "iot" / "cardholders.json").read_text(encoding="utf-8"))
    personal = [v for h in holders for v in (h["name"], h["phone"]) if v]
    assert [s for s in [IOT_KEY, *personal] if s in text] == []


def test_broken_clock_rule_is_relative_to_the_as_of():
    """One day of slack after the as-of; anything later, or before 2000, is a broken clock."""
    from islandbridge.connectors.iot_rest import clock_problem

    as_of = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    edge = int((as_of + dt.timedelta(days=1)).timestamp() * 1000)
    assert clock_problem(edge, as_of) is None
    assert "more than 1 day" in clock_problem(edge + 1, as_of)
    assert "not epoch milliseconds" in clock_problem("1790000000000", as_of)
