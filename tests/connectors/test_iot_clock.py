"""The broken-clock rule does not depend on how long after its as-of a run reads the event log.

A backfill (or the first run of a DAG set up late) reads the log as it is now, with the real events of
the days after its as-of: those land; ts = 0 and a clock far in the future are still quarantined, also on
a tiny page made only of a broken event (the reference carried from earlier pages, and earlier runs).
"""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.config import parse_as_of
from islandbridge.connectors import ExtractContext, iot_clock
from islandbridge.connectors.iot_clock import TRUSTED_PAGE, ArrivalReference, clock_bounds, clock_problem
from islandbridge.landing.zone import LandingWriter
from tests.connectors.test_iot_rest import (
    AS_OF_END,
    AS_OF_MS,
    DAY_MS,
    connector,
    event,
    landed_keys,
    log_events,
    quarantined,
)

EARLY = parse_as_of("2026-11-16")  # four days before the street's last day: a backfill's first as-of
EARLY_MS = int(EARLY.timestamp() * 1000)
FUTURE = (1_829_664_000_000, 4_102_444_800_000, AS_OF_MS + 365 * DAY_MS)  # 2027-12-24, 2100, a year on


def decide(as_of: dt.datetime, pages: list[list], carried=None, read_at=None) -> list[list[str | None]]:
    """Each page's events through the rule as the connector applies it: observe the page, then judge;
    the pages read at ``read_at`` (epoch ms; default: now)."""
    reference, out = ArrivalReference(carried), []
    with mock.patch.object(iot_clock, "read_now_ms", (lambda: read_at) if read_at else iot_clock.read_now_ms):
        for page in pages:
            ms = reference.observe(page)
            out.append([clock_problem(ts, as_of, ms) for ts in page])
    return out


def test_a_page_read_days_after_the_as_of_lands_its_events_and_keeps_the_broken_ones_out():
    late = [AS_OF_MS - 5 * 3_600_000 + 60_000 * i for i in range(300)]  # 4 days after the as-of EARLY
    page = [*late, 0, *FUTURE, 946_684_799_999]
    verdicts = decide(EARLY, [page])[0]
    assert verdicts[:300] == [None] * 300
    assert all(v and "device clock" in v for v in verdicts[300:])
    assert "the log's arrival time" in verdicts[301] and "later than the as-of" in verdicts[301]
    assert "unset" in verdicts[300]
    # read the old way (the as-of alone), every one of the real events was a "broken clock"
    assert all(clock_problem(ts, EARLY) for ts in late)


def test_a_tiny_page_of_one_broken_event_is_judged_by_the_reference_carried_from_earlier_pages():
    late = [AS_OF_MS - 60_000 * i for i in range(TRUSTED_PAGE)]
    just_arrived, broken = AS_OF_MS + 3_600_000, AS_OF_MS + 3 * DAY_MS
    first, tiny, tail = decide(EARLY, [late, [broken], [just_arrived]])
    assert first == [None] * TRUSTED_PAGE
    assert tiny[0] and "more than 1 day after the log's arrival time" in tiny[0]
    assert tail == [None]
    # a run that starts on such a page carries the reference in its state
    reference = ArrivalReference()
    reference.observe(late)
    assert decide(EARLY, [[broken], [just_arrived]], carried=reference.ms) == [[tiny[0]], [None]]
    # without a trusted page, the as-of is the reference: the real late event would have been lost
    assert decide(EARLY, [[just_arrived]]) != [[None]]


def test_the_reference_is_a_running_maximum_bounded_by_the_moment_of_reading(monkeypatch):
    reference = ArrivalReference()
    assert reference.observe([AS_OF_MS] * (TRUSTED_PAGE - 1)) is None  # too few to trust
    assert reference.observe([AS_OF_MS] * TRUSTED_PAGE) == AS_OF_MS
    assert reference.observe([EARLY_MS] * 500) == AS_OF_MS  # never moves back
    monkeypatch.setattr(iot_clock, "read_now_ms", lambda: AS_OF_MS + DAY_MS)
    assert reference.observe([FUTURE[1]] * 500) == AS_OF_MS + DAY_MS  # nothing arrived after it was read
    assert clock_problem(FUTURE[0], EARLY, reference.ms)
    assert ArrivalReference("1790000000000").ms is None and ArrivalReference(True).ms is None


def test_a_daily_run_read_shortly_after_its_as_of_keeps_the_as_of_limit():
    """Page medians at or before T leave the limit (and the reason's words) exactly as they were."""
    page = [AS_OF_MS - 60_000 * i for i in range(1000)] + [AS_OF_MS + DAY_MS + 1, 0]
    (verdicts,) = decide(AS_OF_END, [page])
    assert verdicts == [clock_problem(ts, AS_OF_END) for ts in page]
    assert "more than 1 day after the as-of (limit 2026-11-21T16:00:00Z)" in verdicts[-2]


@settings(max_examples=200, deadline=None)
@given(
    arrival_days=st.integers(0, 300),
    prompt=st.lists(st.integers(0, 3_600_000), min_size=TRUSTED_PAGE, max_size=300),
    late=st.lists(st.integers(0, 2 * DAY_MS), max_size=60),
    broken=st.lists(st.sampled_from([0, *FUTURE[:2], "a day on", "a year on"]), max_size=49),
)
def test_any_late_read_lands_real_events_and_quarantines_broken_clocks(arrival_days, prompt, late, broken):
    """Whatever the delay between the as-of and the read (up to 300 days: 2027-12-24 is still ahead), a
    page of real events (most within the hour, some up to two days late) lands whole and its broken
    clocks (0, 2027-12-24, 2100, more than a day or a year after the read) are quarantined."""
    arrival = EARLY_MS + arrival_days * DAY_MS
    real = [arrival - d for d in prompt + late]
    ahead = {"a day on": arrival + DAY_MS + 1, "a year on": arrival + 365 * DAY_MS}
    broken = [ahead.get(b, b) for b in broken]
    (verdicts,) = decide(EARLY, [real + broken], read_at=arrival)
    assert verdicts[: len(real)] == [None] * len(real)
    assert all(verdicts[len(real) :])


@settings(max_examples=300, deadline=None)
@given(
    ts=st.one_of(
        st.integers(-(2**70), 2**70),
        st.integers(EARLY_MS - DAY_MS, EARLY_MS + 500 * DAY_MS),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    reference=st.one_of(st.none(), st.integers(EARLY_MS - 10 * DAY_MS, EARLY_MS + 500 * DAY_MS)),
)
def test_a_timestamp_within_the_bounds_is_exactly_one_the_rule_accepts(ts, reference):
    """The fast paths' numeric bounds and the worded rule agree, whatever the reference."""
    low, high = clock_bounds(EARLY, reference)
    assert ((low <= ts <= high) and ts != 0) == (clock_problem(ts, EARLY, reference) is None)


def extract(iot, root, run_id: str, as_of: dt.datetime, state=None):
    writer = LandingWriter.open(root.as_uri(), run_id, "iot", iot.streams())
    new_state = iot.extract(ExtractContext(run_id, as_of, state or {}, writer))
    return new_state, writer.close(new_state)


@pytest.mark.parametrize("columnar", [True, False])
def test_a_backfill_reading_the_whole_log_lands_what_a_run_at_its_end_lands(
    iot_server, street_dir, tmp_path, monkeypatch, columnar
):
    """The street's log ends on 2026-11-20; a first run as of 2026-11-16 reads all of it: the real events
    of the 17th to the 20th land, the simulator's broken clocks (0, 2027-12-24, 2100) are quarantined."""
    monkeypatch.setattr(iot_clock, "read_now_ms", lambda: AS_OF_MS + DAY_MS)  # read just after the log's end
    iot = connector(iot_server, page_limit=1000, columnar=columnar)
    state, manifest = extract(iot, tmp_path, "late", EARLY)
    _, at_end = extract(iot, tmp_path, "end", AS_OF_END)
    assert landed_keys(tmp_path, "late", "events") == landed_keys(tmp_path, "end", "events")
    assert sorted(quarantined(tmp_path, "late")) == sorted(quarantined(tmp_path, "end"))
    assert manifest["streams"]["events"] == at_end["streams"]["events"]
    stamps = {e["event_id"]: e["ts"] for e in log_events(street_dir)}
    assert all(stamps[k.split(":", 1)[1]] in (0, *FUTURE[:2]) for k in quarantined(tmp_path, "late"))
    assert EARLY_MS + DAY_MS < state["events"]["reference_ms"] <= AS_OF_MS

    # The next run begins on a tiny page: a real event that arrived after the street's end, and a broken
    # one three days ahead. The reference carried in the state tells them apart.
    iot_server.append_events([event(AS_OF_MS + 3_600_000, 1), event(AS_OF_MS + 3 * DAY_MS, 2)])
    next_day = EARLY + dt.timedelta(days=1)
    state2, _ = extract(iot, tmp_path, "next", next_day, state)
    assert landed_keys(tmp_path, "next", "events") == [f"events:{event(0, 1)['event_id']}"]
    assert list(quarantined(tmp_path, "next")) == [f"events:{event(0, 2)['event_id']}"]
    assert state2["events"]["reference_ms"] == state["events"]["reference_ms"]


def test_a_carried_reference_is_bounded_by_the_moment_of_reading(monkeypatch):
    """A state edited by hand, or saved by a host whose clock ran ahead, must not open the limit."""
    monkeypatch.setattr(iot_clock, "read_now_ms", lambda: AS_OF_MS + 3_600_000)
    assert ArrivalReference(carried=FUTURE[1]).ms == AS_OF_MS + 3_600_000
    assert clock_problem(FUTURE[0], AS_OF_END, ArrivalReference(carried=FUTURE[1]).ms)


def test_a_daily_run_read_minutes_after_its_as_of_keeps_the_as_ofs_limit():
    """A busy log read ten minutes after T: its last page's median lies a little after T. The limit stays
    T + 1 day, as before the reference existed, so a clock that far ahead is still a broken one."""
    read_at = AS_OF_MS + 10 * 60_000
    page = [AS_OF_MS - 2 * 60_000 + 1_000 * i for i in range(480)]  # the last eight minutes of the log
    reference = ArrivalReference()
    with mock.patch.object(iot_clock, "read_now_ms", lambda: read_at):
        ms = reference.observe(page)
    assert ms > AS_OF_MS  # the median lies after T ...
    just_past = AS_OF_MS + DAY_MS + 5 * 60_000
    assert clock_problem(just_past, AS_OF_END, ms) == clock_problem(
        just_past, AS_OF_END
    )  # ... and changes nothing
    assert "after the as-of" in clock_problem(just_past, AS_OF_END, ms)
    assert clock_bounds(AS_OF_END, ms) == clock_bounds(AS_OF_END)


def test_a_page_with_an_integer_too_large_for_a_float_is_observed_without_error(monkeypatch):
    """Python's JSON reader gives any integer; one of 400 digits cannot become a float."""
    monkeypatch.setattr(iot_clock, "read_now_ms", lambda: AS_OF_MS + DAY_MS)
    page = [10**400, *[AS_OF_MS] * TRUSTED_PAGE]
    assert ArrivalReference().observe(page) == AS_OF_MS
    assert clock_problem(10**400, AS_OF_END, AS_OF_MS)
