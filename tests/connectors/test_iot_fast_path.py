"""The IoT event path's shortcuts change nothing: the same events through the careful per-event path and
through the fast one land the same tables, quarantine the same rows with the same reasons and count the
same; and each shortcut agrees with the rule it stands in for."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from islandbridge.connectors import base, iot_rest
from islandbridge.connectors.iot_rest import clock_bounds, clock_problem
from islandbridge.connectors.paging import item_problem, problem_free
from islandbridge.landing import zone
from islandbridge.landing.zone import text_column, to_text
from tests.connectors.test_iot_rest import AS_OF_END, AS_OF_MS, DAY_MS, connector, run

FOLDERS = ("devices", "cardholders", "events", "_quarantine", "_deleted")


def quirky_lines(seed: int = 17) -> list[bytes]:
    """A few thousand events with every quirk of the log, as raw JSON lines: repeats, late events, broken
    clocks (0, before 2000, far future, NaN, infinities, 1e20, text, booleans), the exact bounds, float
    and huge timestamps, missing or blank ids, odd value types, non-objects and invalid Unicode."""
    rng = random.Random(seed)
    limit = AS_OF_MS + DAY_MS
    stamps = ["0", "NaN", "Infinity", "-Infinity", "1e20", "-1e300", "946684799999", "946684800000",
              "946684800000.0", str(limit), f"{limit}.0", str(limit + 1), f"{limit}.5", "true", "false",
              "null", '"1794585542344"', "99999999999999999999999", "-5", f"{AS_OF_MS - 7}.25", "[1]", '{"a": 1}',
              str(AS_OF_MS + 365 * DAY_MS)]  # fmt: skip
    values = ["null", "1.0", "2.5", "1e16", "7206.0", "-0.0", "3", "true", '"x"', "[1, 2]", '{"k": "v"}',
              "100000000000000000000000000000", '"中文"']  # fmt: skip
    holders, alarms = ["null", '"H0000001"'], ["null", '"A1"', "5"]
    lines = []
    for i in range(3000):
        ts = rng.choice(stamps) if i % 3 == 0 else str(AS_OF_MS - rng.randint(0, 20 * DAY_MS))
        lines.append(
            f'{{"event_id": "q-{i:05d}", "ts": {ts}, "device_id": "DR{i % 50:06d}", "type": "door_open", '
            f'"holder_id": {rng.choice(holders)}, "value": {rng.choice(values)}, '
            f'"alarm_code": {rng.choice(alarms)}}}'
        )
    lines += [
        f'{{"ts": {AS_OF_MS}, "device_id": "X"}}',
        f'{{"event_id": "  ", "ts": {AS_OF_MS}}}',
        f'{{"event_id": " padded ", "ts": {AS_OF_MS}}}',
        f'{{"event_id": 12345, "ts": {AS_OF_MS}}}',
        f'{{"event_id": "sur", "ts": {AS_OF_MS}, "device_id": "D\\udc00"}}',
        f'{{"event_id": "emoji", "ts": {AS_OF_MS}, "device_id": "\\ud83d\\ude00"}}',
        "null",
        "[1, 2]",
        '"text"',
    ]
    lines += rng.sample(lines, 600)  # at-least-once: repeats of good and broken events alike
    rng.shuffle(lines)
    return [line.encode("utf-8") for line in lines]


def landed(root, run_id: str) -> dict:
    out = {}
    for folder in FOLDERS:
        table = pq.read_table(root / run_id / "iot" / folder)
        out[folder] = (table.schema, sorted(json.dumps(r, sort_keys=True) for r in table.to_pylist()))
    return out


def test_quirky_events_land_identically_through_the_careful_and_the_fast_path(
    iot_server, tmp_path, monkeypatch
):
    with iot_server._log._lock:  # raw lines: the simulator's append() cannot write invalid Unicode
        iot_server._log._appended.extend(quirky_lines())
    state_columnar, columnar = run(connector(iot_server, page_limit=700), tmp_path, "columnar")
    iot = connector(iot_server, page_limit=700, columnar=False)
    state_fast, fast = run(iot, tmp_path, "fast")

    # The careful path: every event asked item_problem and clock_problem, every cell through to_text.
    monkeypatch.setattr(iot_rest, "problem_free", lambda items, body: False)
    monkeypatch.setattr(iot_rest, "clock_bounds", lambda as_of, reference_ms=None: (math.inf, -math.inf))
    monkeypatch.setattr(
        zone, "text_column", lambda values: pa.array([to_text(v) for v in values], pa.string())
    )
    monkeypatch.setattr(base.Stream, "record_keys", lambda self, rows: [self.record_key(r) for r in rows])
    state_careful, careful = run(iot, tmp_path, "careful")

    assert fast == careful == columnar and state_fast == state_careful == state_columnar
    assert landed(tmp_path, "fast") == landed(tmp_path, "careful") == landed(tmp_path, "columnar")
    counts = fast["streams"]["events"]
    assert counts["quarantined"] > 500 and counts["duplicates"] > 300 and counts["landed"] > 1000


@pytest.mark.parametrize(
    "ts",
    [0, -5, 946_684_799_999, 946_684_800_000, 946_684_800_000.0, AS_OF_MS, AS_OF_MS + DAY_MS,
     AS_OF_MS + DAY_MS + 1, AS_OF_MS + DAY_MS + 0.5, float("nan"), float("inf"), -float("inf"), 1e20,
     10**23, True, False, None, "1", 1.5e12],
)  # fmt: skip
def test_a_timestamp_within_the_clock_bounds_is_exactly_one_clock_problem_accepts(ts):
    low, high = clock_bounds(AS_OF_END)
    fast = (type(ts) is int or type(ts) is float) and low <= ts <= high
    assert fast == (clock_problem(ts, AS_OF_END) is None)


@pytest.mark.parametrize(
    ("body", "free"),
    [
        (b'[{"a": "\xe4\xb8\xad"}]', True),
        (b'[{"a": "\\ud800"}]', False),
        (b'[{"a": "\\uDC00"}]', False),
        (b'[{"\\udbff": 1}]', False),
        (b'[{"a": "\xed\xa0\x80"}]', False),
        (b"[1]", False),
        (b"[null]", False),
    ],
)
def test_a_page_is_problem_free_only_when_no_item_could_have_a_problem(body, free):
    items = json.loads(body)
    assert problem_free(items, body) is free
    if free:
        assert not any(item_problem(i) for i in items)
    else:
        assert any(item_problem(i) for i in items) or b"\\u" in body  # an escape may be a valid pair


def test_a_text_column_is_to_text_of_every_cell():
    pool = [None, 0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, True, False, 1.0, 7206.0, 1e16,
            -0.0, float("nan"), float("inf"), "x", "", " a ", "中文", dt.datetime(2026, 1, 1, 1, 2, 3),
            dt.date(2026, 1, 1), decimal.Decimal("1.50"), [1, "a"], {"k": 2}, b"ab\xff"]  # fmt: skip
    rng = random.Random(3)
    kinds = [int, str, bool, float, type(None)]
    for _ in range(3000):
        if rng.random() < 0.5:  # one kind (and nulls): Arrow converts these itself
            kind = rng.choice(kinds)
            values = [v for v in pool if type(v) is kind or v is None] * 2
            values = rng.sample(values, rng.randint(0, len(values)))
        else:
            values = rng.sample(pool, rng.randint(0, 6))
        assert text_column(values).equals(pa.array([to_text(v) for v in values], pa.string())), values
