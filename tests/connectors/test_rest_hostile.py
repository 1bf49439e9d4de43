"""The REST connectors and their HTTP client against hostile or careless servers (issue #15, items 7-10).

Each test builds a misbehaving server on loopback (``hostile_http``) and states one outcome: a
quarantine row with its reason, a duplicate counted only when truly identical, or a one-line project
error of the right kind. Every test is bounded in time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from islandbridge.config import Secret, SourceSettings, parse_as_of
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.connectors.http import HttpClient, Pacing, RetryPolicy
from islandbridge.errors import ConfigError, FatalSourceError, RetriableError
from islandbridge.landing.zone import LandingWriter
from tests.connectors.hostile_http import (
    HostileServer,
    Reply,
    grid_api,
    grid_item,
    gzip_bomb,
    iot_api,
    json_reply,
    monotonic_ticker,
    raw_json_reply,
    slowly,
)
from tests.connectors.support import FakeTime

pytestmark = pytest.mark.timeout(60)

AS_OF = parse_as_of("2026-11-20")
_runs = iter(range(1, 10_000))


def grid(server: HostileServer, **options):
    settings = SourceSettings(
        "grid",
        "grid_rest",
        {"base_url": server.base_url, "client_id": "c", "client_secret": Secret("s", "test"), **options},
    )
    connector = build_connector(settings)
    connector.pacing = FakeTime().pacing()
    return connector


def iot(server: HostileServer, **options):
    settings = SourceSettings(
        "iot", "iot_rest", {"base_url": server.base_url, "api_key": Secret("k", "test"), **options}
    )
    connector = build_connector(settings)
    connector.pacing = FakeTime().pacing()
    return connector


def run(connector, root: Path, state=None, run_id=None):
    """One extraction into a landing zone: ``(state, manifest, landed rows by stream, quarantine)``."""
    run_id = run_id or f"r{next(_runs)}"
    writer = LandingWriter.open(root.as_uri(), run_id, connector.name, connector.streams())
    new_state = connector.extract(ExtractContext(run_id, AS_OF, state or {}, writer))
    manifest = writer.close(new_state)
    base = root / run_id / connector.name
    rows = {
        s.name: pq.read_table(base / s.name).to_pylist()
        for s in connector.streams()
        if (base / s.name).exists()
    }
    aside = pq.read_table(base / "_quarantine").to_pylist() if (base / "_quarantine").exists() else []
    return new_state, manifest, rows, {r["_record_key"]: r["reason"] for r in aside}


# -- item 7: silent drops ---------------------------------------------------------------------------


def test_grid_far_future_update_time_is_quarantined_once(tmp_path):
    """A 9999-12-31 update_time sorts after every as-of: it is read, quarantined, and next run a duplicate."""
    items = [grid_item(1), grid_item(2, "2026-11-02 08:00:00"), grid_item(3, "9999-12-31 00:00:00")]
    with HostileServer(grid_api({"workers": items})) as server:
        state, manifest, rows, aside = run(grid(server), tmp_path)
        assert [r["worker_id"] for r in rows["workers"]] == ["W0001", "W0002"]
        assert "9999-12-31" in aside["workers:W0003"] and "broken clock" in aside["workers:W0003"]
        counts = manifest["streams"]["workers"]
        assert (counts["read"], counts["landed"], counts["quarantined"]) == (3, 2, 1)
        _, again, _, aside2 = run(grid(server), tmp_path, state)
    assert aside2 == {} and again["streams"]["workers"]["duplicates"] == again["streams"]["workers"]["read"]


def test_grid_same_id_and_time_with_other_content_is_quarantined_not_a_duplicate(tmp_path):
    """A record re-sent with its id and update_time but changed content is a conflict, not a duplicate."""
    items = [grid_item(1), grid_item(2, "2026-11-02 08:00:00")]
    with HostileServer(grid_api({"workers": items})) as server:
        state, *_ = run(grid(server), tmp_path)
        items[1] = grid_item(2, "2026-11-02 08:00:00", grid_code="G999")
        _, manifest, rows, aside = run(grid(server), tmp_path, state)
    assert "different content" in aside["workers:W0002"]
    assert rows.get("workers", []) == [] and manifest["streams"]["workers"]["quarantined"] == 1


def test_grid_identical_resend_within_a_run_is_a_duplicate_but_a_changed_one_is_not(tmp_path):
    """Within one run: an identical copy is counted as a duplicate, a changed copy is quarantined."""
    same = grid_item(1)
    items = [same, dict(same), grid_item(1, grid_code="G777"), grid_item(2, "2026-11-02 08:00:00")]
    with HostileServer(grid_api({"workers": items})) as server:
        _, manifest, rows, aside = run(grid(server), tmp_path)
    counts = manifest["streams"]["workers"]
    assert (counts["read"], counts["landed"], counts["duplicates"], counts["quarantined"]) == (4, 2, 1, 1)
    assert "different content" in aside["workers:W0001"]


def test_grid_short_page_before_total_is_retriable_not_success(tmp_path):
    """100 of 153 served, then an empty page while total still says 153: an error, not exit 0."""
    items = [grid_item(n, f"2026-11-01 08:{n // 60:02d}:{n % 60:02d}") for n in range(153)]

    def truncated(endpoint, matching, query):
        if endpoint != "workers":
            return None
        page, size = int(query["page"]), int(query["page_size"])
        served = [i for i in matching if i in items[:100]][(page - 1) * size : page * size]
        data = {"total": len(matching), "page": page, "page_size": size, "items": served}
        return json_reply({"code": 0, "msg": "ok", "data": data})

    with HostileServer(grid_api({"workers": items}, page_hook=truncated)) as server:
        with pytest.raises(
            RetriableError, match=r"GET /workers: page 1 held 1 item but the answer's total is 54"
        ):
            run(grid(server, page_size=100), tmp_path)


def test_iot_has_more_as_a_string_is_a_fatal_contract_error(tmp_path):
    """``has_more: "true"`` is not a boolean: stopping after one page would drop the rest silently."""
    pages = {None: {"events": [], "next_cursor": "A", "has_more": "true"}}
    with HostileServer(iot_api(pages)) as server:
        with pytest.raises(FatalSourceError, match="has_more is 'true', not a JSON boolean"):
            run(iot(server), tmp_path)


def test_grid_null_and_string_items_are_quarantined_and_the_rest_landed(tmp_path):
    """``null`` or a string among a list's items is a quarantine row naming what it is, not AttributeError."""
    items = [grid_item(1), None, "W0002", grid_item(3, "2026-11-02 08:00:00")]
    with HostileServer(grid_api({"workers": items})) as server:
        _, manifest, rows, _ = run(grid(server), tmp_path, run_id="r")
    assert [r["worker_id"] for r in rows["workers"]] == ["W0001", "W0003"]
    assert manifest["streams"]["workers"]["quarantined"] == 2
    reasons = sorted(r["reason"] for r in pq.read_table(tmp_path / "r" / "grid" / "_quarantine").to_pylist())
    assert [r.split(",")[0] for r in reasons] == ["the item is a string", "the item is null"]


def test_a_lone_surrogate_in_a_grid_record_is_quarantined_with_a_reason(tmp_path):
    """JSON may escape a lone surrogate (``\\ud800``): that record is quarantined, the run completes."""
    good, bad = grid_item(1), grid_item(2, "2026-11-02 08:00:00")
    text = json.dumps(bad).replace('"G001"', '"G\\ud800"')

    def hook(endpoint, matching, query):
        if endpoint != "workers":
            return None
        body = (
            '{"code": 0, "msg": "ok", "data": {"total": 2, "page": 1, "page_size": 500, "items": [%s, %s]}}'
        )
        return raw_json_reply(body % (json.dumps(good), text))

    with HostileServer(grid_api({}, page_hook=hook)) as server:
        _, manifest, rows, aside = run(grid(server), tmp_path)
    assert [r["worker_id"] for r in rows["workers"]] == ["W0001"]
    assert "field grid_code holds a lone surrogate" in aside["workers:W0002"]
    assert manifest["streams"]["workers"]["quarantined"] == 1


def test_iot_null_event_and_surrogate_device_are_quarantined(tmp_path):
    """The IoT lists too: a null event and a device with invalid Unicode are quarantine rows."""
    event = {"event_id": "e1", "ts": 1_763_600_000_000, "device_id": "D1", "type": "heartbeat"}
    pages = {None: {"events": [None, event], "next_cursor": "A", "has_more": False}}
    handler = iot_api(pages)

    def with_devices(request):
        if request.path.endswith("/devices"):
            return raw_json_reply('{"devices": [{"device_id": "D\\udc00", "device_type": "water_meter"}]}')
        return handler(request)

    with HostileServer(with_devices) as server:
        _, manifest, rows, aside = run(iot(server), tmp_path)
    assert [r["event_id"] for r in rows["events"]] == ["e1"]
    assert aside["events:"].startswith("the item is null")
    assert "lone surrogate" in aside["devices:D\\udc00"]
    assert manifest["streams"]["devices"]["quarantined"] == 1


@pytest.mark.parametrize("ts", ["1e20", "NaN", "-1e300"])
def test_iot_extreme_ts_is_quarantined_as_a_clock_problem(ts, tmp_path):
    """``ts`` of 1e20 or NaN cannot become a date: the event is quarantined, no OverflowError."""
    body = (
        '{"events": [{"event_id": "e1", "ts": %s, "device_id": "D1"}], "next_cursor": "A", "has_more": false}'
    )
    with HostileServer(iot_api({None: raw_json_reply(body % ts)})) as server:
        _, manifest, _, aside = run(iot(server), tmp_path)
    assert "clock" in aside["events:e1"] and manifest["streams"]["events"]["quarantined"] == 1


# -- item 9: cursor cycles ------------------------------------------------------------------------------


def test_iot_cursor_cycle_is_fatal_and_names_the_problem(tmp_path):
    """A, B, A, … with has_more true would be followed for hours: a repeated cursor is fatal at once."""
    pages = {
        None: {"events": [], "next_cursor": "A", "has_more": True},
        "A": {"events": [], "next_cursor": "B", "has_more": True},
        "B": {"events": [], "next_cursor": "A", "has_more": True},
    }
    with HostileServer(iot_api(pages)) as server:
        with pytest.raises(FatalSourceError, match="the cursor cycles: page 3"):
            run(iot(server), tmp_path)
        assert len(server.requests) == 2 + 3  # devices, cardholders, three pages of the log


def test_iot_cursor_back_to_the_saved_start_is_fatal(tmp_path):
    """Resumed from the saved cursor S, the log leads back to S: a cycle, not a new page to follow."""
    pages = {
        "S": {"events": [], "next_cursor": "T", "has_more": True},
        "T": {"events": [], "next_cursor": "S", "has_more": True},
    }
    with HostileServer(iot_api(pages)) as server:
        with pytest.raises(FatalSourceError, match="the saved one it started from"):
            run(iot(server), tmp_path, state={"events": {"cursor": "S"}})


# -- item 8: deadlines ---------------------------------------------------------------------------------


def test_a_trickling_answer_hits_the_request_deadline(tmp_path):
    """One byte every 0.2 s never trips the read timeout; the request deadline ends it with a clear error."""
    body = json.dumps({"devices": []}).encode()
    handler = iot_api({})

    def trickle(request):
        if request.path.endswith("/devices"):
            return Reply(200, slowly(body, 0.2))
        return handler(request)

    with HostileServer(trickle) as server:
        started = time.monotonic()
        with pytest.raises(
            RetriableError, match=r"no complete answer within 1s \(option request_deadline_s\)"
        ):
            run(iot(server, request_deadline_s=1, timeout_s=5), tmp_path)
    assert time.monotonic() - started < 5


def test_the_extraction_deadline_ends_a_long_run(tmp_path):
    """Every request is quick, but together they pass ``extract_deadline_s``: RetriableError naming it."""
    items = [grid_item(n, f"2026-11-01 08:00:{n:02d}") for n in range(40)]
    with HostileServer(grid_api({"workers": items})) as server:
        connector = grid(server, page_size=5, extract_deadline_s=60)
        connector.pacing = Pacing(sleep=lambda s: None, wall=monotonic_ticker(2.0))
        with pytest.raises(
            RetriableError, match=r"ran past its deadline of 60s \(option extract_deadline_s\)"
        ):
            run(connector, tmp_path)
        assert len(server.requests) < 20


def test_deadline_and_size_options_are_checked_when_built(tmp_path):
    with HostileServer(iot_api({})) as server:
        with pytest.raises(ConfigError, match="request_deadline_s.*extract_deadline_s.*max_response_mb"):
            iot(server, request_deadline_s=0, extract_deadline_s="soon", max_response_mb=-1)
        assert iot(server).policy.max_response_bytes == 64 * 2**20
        assert iot(server).policy.request_deadline_s == 120


# -- item 10: size limit ---------------------------------------------------------------------------------


def test_a_gzip_bomb_is_stopped_at_the_size_limit(tmp_path):
    """A small gzip body inflating past ``max_response_mb`` is refused while it inflates."""
    bomb = gzip_bomb(16 * 2**20)
    assert len(bomb) < 100_000
    handler = iot_api({})

    def bombing(request):
        if request.path.endswith("/devices"):
            return Reply(200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        return handler(request)

    with HostileServer(bombing) as server:
        with pytest.raises(FatalSourceError, match=r"exceeds 2 MiB \(decompressed; option max_response_mb\)"):
            run(iot(server, max_response_mb=2), tmp_path)


# -- raw tracebacks and permanent problems reported as retriable ------------------------------------------


def test_unparsable_retry_after_waits_the_default_backoff():
    """``Retry-After: soon-ish`` is neither seconds nor a date: the default backoff, no ValueError."""
    answers = iter([json_reply({}, 429, **{"Retry-After": "soon-ish"}), json_reply({"ok": True})])
    fake = FakeTime()
    with HostileServer(lambda request: next(answers)) as server:
        with HttpClient(server.base_url, RetryPolicy(backoff_s=0.5), pacing=fake.pacing()) as client:
            assert client.request("GET", "/x").json() == {"ok": True}
    assert len(fake.sleeps) == 1 and 0 <= fake.sleeps[0] <= 0.5


def test_json_served_as_html_is_a_fatal_contract_error(tmp_path):
    """Valid JSON labelled text/html will not change on retry: fatal, not three retries and exit 3."""
    handler = iot_api({})

    def mislabelled(request):
        if request.path.endswith("/devices"):
            return raw_json_reply('{"devices": []}', content_type="text/html; charset=utf-8")
        return handler(request)

    with HostileServer(mislabelled) as server:
        with pytest.raises(FatalSourceError, match="JSON body labelled 'text/html"):
            run(iot(server), tmp_path)
        assert len(server.requests) == 1


def test_a_grid_token_with_crlf_is_fatal(tmp_path):
    """A token holding CR/LF cannot be sent as a header: fatal, naming the token, never its value."""
    with HostileServer(grid_api({}, token="abc\r\nX-Injected: 1")) as server:
        with pytest.raises(FatalSourceError, match="access_token is not plain visible ASCII") as caught:
            run(grid(server), tmp_path)
    assert "abc" not in str(caught.value)


def test_an_api_key_with_crlf_is_refused_when_built():
    with HostileServer(iot_api({})) as server:
        with pytest.raises(ConfigError, match="api_key: holds characters an HTTP header cannot carry"):
            iot(server, api_key=Secret("k\r\nX-Evil: 1", "test"))


def test_a_header_that_cannot_be_sent_is_fatal_in_the_client():
    """Whatever the header, a request httpx refuses to write is a FatalSourceError, not a retry."""
    with HostileServer(lambda request: json_reply({})) as server:
        with HttpClient(server.base_url, pacing=FakeTime().pacing()) as client:
            with pytest.raises(FatalSourceError, match="cannot be sent as written"):
                client.request("GET", "/x", headers={"Authorization": "Bearer a\r\nb"})


def test_far_future_pass_is_skipped_when_the_list_ends_before_the_as_of(tmp_path):
    """The extra far-future query is made only when the list goes on past the as-of."""
    with HostileServer(grid_api({"workers": [grid_item(1)]})) as server:
        run(grid(server), tmp_path)
        queries = [r.query.get("updated_after") for r in server.requests if r.path.endswith("/workers")]
    assert queries == [None]


def test_an_iot_cursor_that_cannot_be_stored_is_fatal(tmp_path):
    """A next_cursor holding a lone surrogate could not be saved in the state: fatal, not a traceback."""
    body = '{"events": [], "next_cursor": "A\\udc00", "has_more": false}'
    with HostileServer(iot_api({None: raw_json_reply(body)})) as server:
        with pytest.raises(FatalSourceError, match="next_cursor is .*not a string"):
            run(iot(server), tmp_path)
