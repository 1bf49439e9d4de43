"""The IoT event log read column-wise (Arrow) lands exactly what the careful per-event path lands, across
page boundaries, repeats that straddle pages and broken events in the middle of a page; and a page the
columnar reader cannot prove safe goes the careful way."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from islandbridge.connectors import iot_events
from islandbridge.connectors.iot_rest import EVENTS
from tests.connectors.test_iot_fast_path import landed
from tests.connectors.test_iot_rest import AS_OF_MS, DAY_MS, connector, event, run

SCHEMA = iot_events.page_schema(EVENTS)


def tricky_events() -> list[dict]:
    """Events whose handling depends on order and page: repeats of good and broken events on the same
    and on later pages, a good copy before a broken copy of one key, a broken event without some fields
    (its quarantine row must not invent them), integral and odd readings."""
    rng = random.Random(5)
    out = []
    for n in range(1, 400):
        e = event(AS_OF_MS - rng.randint(0, 5 * DAY_MS), n)
        e["type"], e["value"] = "meter_reading", rng.choice([None, 12.5, 7206.0, 0.0, 1e-7, 3.25e12])
        if n % 37 == 0:
            e["ts"] = rng.choice([0, 631_152_000_000, AS_OF_MS + 3 * DAY_MS])
        if n % 53 == 0:
            e = {"event_id": e["event_id"], "ts": 0}  # broken, and most fields absent
        out.append(e)
    good_then_broken = dict(out[10], ts=0)
    out.insert(12, good_then_broken)
    out += [dict(e) for e in rng.sample(out, 60)]  # repeats, straddling pages
    out.insert(200, dict(out[3]))
    return out


def test_columnar_and_careful_paths_land_the_same_across_pages(iot_server, tmp_path, monkeypatch):
    iot_server.append_events(tricky_events())
    taken = []
    original = iot_events.land_page
    monkeypatch.setattr(
        "islandbridge.connectors.iot_rest.land_page",
        lambda *args: taken.append(original(*args)) or taken[-1],
    )
    state_c, columnar = run(connector(iot_server, page_limit=7), tmp_path, "columnar")
    state_p, careful = run(connector(iot_server, page_limit=7, columnar=False), tmp_path, "careful")
    assert columnar == careful and state_c == state_p
    assert landed(tmp_path, "columnar") == landed(tmp_path, "careful")
    assert taken.count(True) > 0.9 * len(taken)  # the columnar path did the work, not the fallback
    counts = columnar["streams"]["events"]
    assert counts["quarantined"] >= 15 and counts["duplicates"] >= 60


def test_a_broken_event_keeps_only_the_fields_it_was_sent_with(iot_server, tmp_path):
    """Its quarantine row is the event as Python reads it: absent fields stay absent, not null."""
    iot_server.append_events([{"event_id": "only-two-fields", "ts": 0}])
    state, _ = run(connector(iot_server), tmp_path, "r1")
    quarantine = landed(tmp_path, "r1")["_quarantine"][1]
    rows = [json.loads(r) for r in quarantine if "only-two-fields" in r]
    assert [json.loads(r["record_json"]) for r in rows] == [{"event_id": "only-two-fields", "ts": "0"}]


def page(events: list, **top) -> bytes:
    answer = {"events": events, "next_cursor": "c", "has_more": False, **top}
    return json.dumps(answer, ensure_ascii=False).encode("utf-8")


GOOD = {"event_id": "e-1", "ts": AS_OF_MS, "device_id": "D", "type": "alarm", "value": 1.5}


@pytest.mark.parametrize(
    "body",
    [
        page([dict(GOOD, device_id="a\\b")]),  # an escape: the careful path reads it
        page([dict(GOOD, device_id="\u00e9")]).replace("é".encode(), b"\xff"),  # not UTF-8
        page([dict(GOOD, value=3)]),  # an integer token where Arrow would read 3.0
        page([dict(GOOD, extra=1)]),  # a field not declared: schema drift, decided carefully
        page([GOOD, None]),  # an item that is not an object
        page([dict(GOOD, event_id=" e-1")]),  # an id Python's strip changes
        page([dict(GOOD, ts=1.5e12)]),  # a float ts
        page([GOOD]) + b"\n" + page([GOOD]),  # two documents
        page([GOOD], has_more="yes"),
    ],
)
def test_a_page_the_columnar_reader_cannot_prove_safe_goes_the_careful_way(body):
    assert iot_events.parse_page(body, SCHEMA) is None


def test_an_ordinary_page_is_read_column_wise():
    parsed = iot_events.parse_page(page([GOOD, dict(GOOD, event_id="e-2", value=None)]), SCHEMA)
    assert parsed is not None and parsed.events.num_rows == 2 and parsed.has_more is False


def test_float_text_is_python_repr_of_every_double():
    rng = random.Random(11)
    values = [0.0, -0.0, 7206.0, 1e-4, 9.999e-5, 1e10, 9999999999.5, 1e16, 1e22, 5e-324, float("nan"),
              float("inf"), -float("inf"), 0.1, 1234.567, None]  # fmt: skip
    values += [rng.uniform(-1e6, 1e6) for _ in range(2000)]
    values += [rng.randint(0, 10**9) / 1000 for _ in range(2000)]
    values += [10.0 ** rng.uniform(-12, 20) for _ in range(2000)]
    text = iot_events.float_text(pa.array(values, pa.float64())).to_pylist()
    assert text == [None if v is None else repr(v) for v in values]
