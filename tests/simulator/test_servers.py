"""The simulated grid and IoT platforms answer over real HTTP exactly as SPEC sections B and D describe.

Most tests serve a tiny handcrafted street written into ``tmp_path`` so they do not depend on the
generator; the last ones use the conftest fixtures built on the generator's street.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
from pathlib import Path

import httpx
import pytest

from islandbridge.devtools.simulator.servers import GridServer, IotServer, serve_forever

CLIENT_ID, CLIENT_SECRET, API_KEY = "test-client", "test-secret-不外传", "iot-key"
RESIDENTS_IN_ORDER = ["GP000002", "GP000001", "GP000003", "GP000004", "GP000005", "GP000006"]
EVENT_IDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 8)]


def _resident(person_id: str, update_time: str) -> dict:
    return {
        "person_id": person_id,
        "name": "章伟",
        "gender": "男",
        "id_card": "510104********0696",
        "phone": "138-0013-8000",
        "address": "锦江苑3-2-501",
        "grid_code": "51140300100101",
        "tags": ["独居老人"],
        "status": "在册",
        "update_time": update_time,
    }


def _holder(holder_id: str, updated_at: str) -> dict:
    return {
        "holder_id": holder_id,
        "name": "王婷",
        "phone": "15256815188",
        "estate_code": "XQ002",
        "building": "11",
        "unit": "1",
        "room": "804",
        "card_no": f"C{holder_id[1:]}",
        "face_enrolled": True,
        "valid_until": "2027-12-31",
        "updated_at": updated_at,
    }


def _event(event_id: str, ts: int, device_id: str = "DR000001") -> dict:
    return {
        "event_id": event_id,
        "ts": ts,
        "device_id": device_id,
        "type": "access_granted",
        "holder_id": "H0000001",
        "value": None,
        "alarm_code": None,
    }


def _write(path: Path, items: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def tiny_street(tmp_path) -> Path:
    """Six residents (two sharing an update_time), a few of everything else, and a 7-line event log."""
    grid = tmp_path / "grid"
    _write(
        grid / "grids.json",
        [
            {
                "grid_code": "51140300100101",
                "grid_name": "01号网格",
                "community_code": "511403001001",
                "community_name": "凤鸣社区",
                "worker_id": "W0001",
                "update_time": "2026-01-11 00:00:00",
            }
        ],
    )
    _write(
        grid / "workers.json",
        [
            {
                "worker_id": "W0001",
                "name": "张鑫",
                "phone": "16654981784",
                "grid_code": "51140300100101",
                "active": True,
                "update_time": "2026-10-13 00:00:00",
            }
        ],
    )
    times = {
        "GP000003": "2026-11-01 08:00:00",
        "GP000001": "2026-11-01 08:00:00",
        "GP000002": "2026-10-15 09:30:00",
        "GP000005": "2026-11-10 12:00:00",
        "GP000004": "2026-11-05 18:45:00",
        "GP000006": "2026-11-10 12:00:01",
    }
    _write(grid / "residents.json", [_resident(pid, t) for pid, t in times.items()])
    _write(
        grid / "events.json",
        [
            {
                "event_id": "EV2026090700000",
                "category": "消防安全",
                "title": "楼道堆物",
                "description": "住户李明13800138000反映",
                "reporter_name": "顾飞",
                "reporter_phone": "13316831272",
                "address": "岷江花园16-2-701",
                "grid_code": "51140300100101",
                "status": "已办结",
                "created_at": 1788731820000,
                "update_time": "2026-09-09 09:57:00",
                "closed_at": "2026-09-08 14:57:00",
            }
        ],
    )
    _write(
        grid / "visits.json",
        [
            {
                "visit_id": "VS0000001",
                "worker_id": "W0001",
                "person_id": "GP000001",
                "visit_time": "2026-11-14 16:44:00",
                "visit_type": "走访",
                "findings": "需要助餐服务",
                "update_time": "2026-11-14 21:50:00",
            }
        ],
    )
    iot = tmp_path / "iot"
    _write(
        iot / "devices.json",
        [
            {
                "device_id": f"DR00000{i}",
                "device_type": "door_access",
                "estate_code": "XQ002",
                "building": "11",
                "unit": "1",
                "room": None,
                "status": "online",
                "installed_at": "2024-05-01T00:00:00Z",
            }
            for i in (1, 2)
        ],
    )
    _write(
        iot / "cardholders.json",
        [
            _holder("H0000003", "2026-09-16T16:00:00Z"),
            _holder("H0000001", "2026-03-12T16:00:00Z"),
            _holder("H0000002", "2026-09-16T16:00:00Z"),
            _holder("H0000004", "2026-11-01T16:00:00Z"),
        ],
    )
    # Arrival order, not ts order: a broken clock (ts 0) and a duplicate delivery included.
    events = [
        _event(EVENT_IDS[0], 1794499200000),
        _event(EVENT_IDS[1], 0),
        _event(EVENT_IDS[2], 1794499100000),
        _event(EVENT_IDS[0], 1794499200000),
        _event(EVENT_IDS[4], 1794499300000),
        _event(EVENT_IDS[5], 1794499400000),
        _event(EVENT_IDS[6], 1794499500000),
    ]
    (iot / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return tmp_path


@pytest.fixture
def grid(tiny_street):
    with GridServer(
        tiny_street / "grid", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, rate_limit_per_s=None
    ) as server:
        yield server


@pytest.fixture
def iot(tiny_street):
    with IotServer(tiny_street / "iot", api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def http():
    """One client for the module: building one loads the TLS trust store, which takes ~0.1 s."""
    with httpx.Client(timeout=5) as client:
        yield client


def _token(http: httpx.Client, server: GridServer, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET):
    return http.post(
        f"{server.base_url}/api/v2/auth/token", json={"client_id": client_id, "client_secret": secret}
    )


def _list(http: httpx.Client, server: GridServer, endpoint: str, token: str | None = None, **params):
    token = token or _token(http, server).json()["data"]["access_token"]
    return http.get(
        f"{server.base_url}/api/v2/{endpoint}", params=params, headers={"Authorization": f"Bearer {token}"}
    )


def _ids(response: httpx.Response, id_field: str = "person_id") -> list[str]:
    return [item[id_field] for item in response.json()["data"]["items"]]


def _iot(http: httpx.Client, server: IotServer, endpoint: str, key: str = API_KEY, **params):
    return http.get(f"{server.base_url}/iot/v1/{endpoint}", params=params, headers={"X-Api-Key": key})


def _all_events(http: httpx.Client, server: IotServer, cursor: str | None = None, limit: int = 2):
    """Follow the cursor to the end; returns (events, last next_cursor)."""
    events: list[dict] = []
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = _iot(http, server, "events", **params).json()
        events += page["events"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return events, cursor


# -- grid: auth -----------------------------------------------------------------------------------


def test_token_is_issued_for_good_credentials(grid, http):
    answer = _token(http, grid)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["code"], body["msg"], body["data"]["expires_in"]) == (0, "ok", 3600)
    assert _list(http, grid, "grids", token=body["data"]["access_token"]).json()["code"] == 0


def test_bad_credentials_are_http_401_code_40100(grid, http):
    answer = _token(http, grid, secret="wrong")
    assert answer.status_code == 401
    assert answer.json()["code"] == 40100


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_missing_or_unknown_token_is_http_401_code_40100(grid, http, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = http.get(f"{grid.base_url}/api/v2/residents", headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (401, 40100)


def test_expired_token_is_http_200_with_code_40101(grid, http):
    token = _token(http, grid).json()["data"]["access_token"]
    grid.expire_tokens()
    answer = _list(http, grid, "residents", token=token)
    assert answer.status_code == 200
    assert answer.json() == {"code": 40101, "msg": "token expired", "data": None}


def test_token_expires_after_its_ttl(tiny_street, http):
    with GridServer(
        tiny_street, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_ttl_s=0.05
    ) as server:
        token = _token(http, server).json()["data"]["access_token"]
        threading.Event().wait(0.1)
        assert _list(http, server, "residents", token=token).json()["code"] == 40101


# -- grid: paging ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [501, 0])
def test_page_size_outside_1_to_500_is_code_40001_under_http_200(grid, http, page_size):
    answer = _list(http, grid, "residents", page_size=page_size)
    assert answer.status_code == 200
    assert answer.json()["code"] == 40001
    assert "page_size must be 1..500" in answer.json()["msg"]


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": "x"},
        {"page_size": "1_0"},
        {"updated_after": "2026-11-01"},
        {"updated_after": "2026-13-01 00:00:00"},
    ],
)
def test_malformed_parameters_are_code_40001_with_a_message(grid, http, params):
    body = _list(http, grid, "residents", **params).json()
    assert body["code"] == 40001
    assert body["msg"] and body["data"] is None


def test_items_are_ordered_by_update_time_then_id(grid, http):
    assert _ids(_list(http, grid, "residents", page_size=500)) == RESIDENTS_IN_ORDER


def test_pages_cut_the_ordered_list_and_report_the_total(grid, http):
    token = _token(http, grid).json()["data"]["access_token"]
    pages = [
        _list(http, grid, "residents", token=token, page=p, page_size=4).json()["data"] for p in (1, 2, 3)
    ]
    assert [page["total"] for page in pages] == [6, 6, 6]
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert [item["person_id"] for page in pages for item in page["items"]] == RESIDENTS_IN_ORDER


def test_updated_after_is_inclusive(grid, http):
    answer = _list(http, grid, "residents", page_size=500, updated_after="2026-11-01 08:00:00")
    assert _ids(answer) == ["GP000001", "GP000003", "GP000004", "GP000005", "GP000006"]
    assert answer.json()["data"]["total"] == 5


def test_edit_moves_an_item_to_the_end_of_the_list(grid, http):
    edited = grid.edit("residents", "GP000002", phone="13900000000")
    assert edited["update_time"] == "2026-11-10 12:00:02"  # one second after the latest item
    answer = _list(http, grid, "residents", page_size=500)
    assert _ids(answer)[-1] == "GP000002"
    assert answer.json()["data"]["items"][-1]["phone"] == "13900000000"


def test_edit_during_paging_happens_after_the_given_page(grid, http):
    grid.edit_during_paging("residents", after_page=1, item_ids=["GP000002"])
    token = _token(http, grid).json()["data"]["access_token"]
    pages = [_ids(_list(http, grid, "residents", token=token, page=p, page_size=2)) for p in (1, 2, 3)]
    # Page 1 was cut before the edit; the move then shifts GP000003 back onto page 1, so it is skipped.
    assert pages == [["GP000002", "GP000001"], ["GP000004", "GP000005"], ["GP000006", "GP000002"]]


def test_unknown_path_is_a_json_404(grid, http):
    answer = _list(http, grid, "households")
    assert answer.status_code == 404
    assert answer.json()["code"] == 40400


def test_json_is_utf8_with_raw_chinese_and_a_correct_content_length(grid, http):
    answer = _list(http, grid, "grids")
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert "凤鸣社区".encode() in answer.content


# -- grid: gateway --------------------------------------------------------------------------------


def test_throttle_next_answers_429_with_retry_after(grid, http):
    grid.throttle_next(2, retry_after=3)
    statuses = [_token(http, grid) for _ in range(3)]
    assert [a.status_code for a in statuses] == [429, 429, 200]
    assert statuses[0].headers["retry-after"] == "3"


def test_token_bucket_answers_429_beyond_the_rate(tiny_street, http):
    with GridServer(
        tiny_street, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, rate_limit_per_s=2
    ) as server:
        answers = [http.get(f"{server.base_url}/api/v2/grids") for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]
        assert answers[2].headers["retry-after"] == "1"
        threading.Event().wait(0.6)  # a token refills every 0.5 s at 2/s
        assert http.get(f"{server.base_url}/api/v2/grids").status_code == 401


def test_injected_502_has_an_html_body_then_requests_succeed(grid, http):
    grid.inject_faults(status=502, count=2)
    failures = [_token(http, grid) for _ in range(2)]
    assert {a.status_code for a in failures} == {502}
    assert failures[0].headers["content-type"].startswith("text/html")
    assert failures[0].text == "<html><body><h1>502 Bad Gateway</h1></body></html>"
    assert _token(http, grid).status_code == 200


def test_injected_fault_hits_only_its_path_prefix(grid, http):
    grid.inject_faults(status=503, count=1, path_prefix="/api/v2/residents")
    token = _token(http, grid).json()["data"]["access_token"]
    assert _list(http, grid, "grids", token=token).status_code == 200
    assert _list(http, grid, "residents", token=token).status_code == 503
    assert _list(http, grid, "residents", token=token).status_code == 200


def test_request_log_has_method_path_query_and_status_but_no_secrets(grid, http):
    grid.throttle_next(1)
    _token(http, grid)
    token = _token(http, grid).json()["data"]["access_token"]
    _list(http, grid, "residents", token=token, page=2, page_size=3)
    assert [(r.method, r.path, r.status) for r in grid.requests] == [
        ("POST", "/api/v2/auth/token", 429),
        ("POST", "/api/v2/auth/token", 200),
        ("GET", "/api/v2/residents", 200),
    ]  # the throttled request was not retried by the helper
    assert grid.requests[-1].query == {"page": "2", "page_size": "3"}
    assert CLIENT_SECRET not in repr(grid.requests)


# -- IoT ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["wrong", ""])
def test_iot_wrong_or_missing_api_key_is_403(iot, http, key):
    answer = _iot(http, iot, "devices", key=key)
    assert answer.status_code == 403
    assert "error" in answer.json()


def test_iot_devices_returns_the_whole_list(iot, http):
    devices = _iot(http, iot, "devices").json()["devices"]
    assert [d["device_id"] for d in devices] == ["DR000001", "DR000002"]


def test_iot_cardholders_page_by_offset_in_updated_at_then_id_order(iot, http):
    pages = [_iot(http, iot, "cardholders", offset=offset, limit=3).json() for offset in (0, 3)]
    assert [(p["offset"], p["limit"], p["total"]) for p in pages] == [(0, 3, 4), (3, 3, 4)]
    ids = [item["holder_id"] for page in pages for item in page["items"]]
    assert ids == ["H0000001", "H0000002", "H0000003", "H0000004"]


def test_iot_cardholders_updated_since_is_inclusive(iot, http):
    page = _iot(http, iot, "cardholders", updated_since="2026-09-16T16:00:00Z").json()
    assert [item["holder_id"] for item in page["items"]] == ["H0000002", "H0000003", "H0000004"]
    assert page["total"] == 3


def test_iot_cardholders_limit_above_1000_is_400(iot, http):
    answer = _iot(http, iot, "cardholders", limit=1001)
    assert answer.status_code == 400
    assert "limit must be 1..1000" in answer.json()["error"]


def test_iot_edit_cardholder_moves_it_after_every_updated_at(iot, http):
    edited = iot.edit_cardholder("H0000001", phone="13900000000")
    assert edited["updated_at"] == "2026-11-01T16:00:01Z"
    page = _iot(http, iot, "cardholders", updated_since="2026-11-01T16:00:01Z").json()
    assert [(h["holder_id"], h["phone"]) for h in page["items"]] == [("H0000001", "13900000000")]


def test_iot_events_cursor_paging_returns_every_line_once_in_arrival_order(iot, http, tiny_street):
    events, _ = _all_events(http, iot, limit=2)
    lines = (tiny_street / "iot" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert events == [json.loads(line) for line in lines]  # the duplicate delivery included, as sent


def test_iot_events_end_with_a_cursor_that_later_sees_appended_events(iot, http):
    _, cursor = _all_events(http, iot, limit=5000)
    assert _iot(http, iot, "events", cursor=cursor).json()["events"] == []
    late = [_event("00000000-0000-4000-8000-000000000099", 1794499600000)]
    iot.append_events(late)
    resumed, _ = _all_events(http, iot, cursor=cursor)
    assert resumed == late


@pytest.mark.parametrize(
    "tamper",
    [lambda c: c[:5] + ("A" if c[5] != "A" else "B") + c[6:], lambda c: c + "AAAA", lambda c: "not a cursor"],
)
def test_iot_tampered_cursor_is_400(iot, http, tamper):
    cursor = _iot(http, iot, "events", limit=1).json()["next_cursor"]
    answer = _iot(http, iot, "events", cursor=tamper(cursor))
    assert answer.status_code == 400
    assert "invalid cursor" in answer.json()["error"]


def test_iot_events_limit_above_5000_is_400(iot, http):
    assert _iot(http, iot, "events", limit=5001).status_code == 400


def test_iot_injected_503_has_a_json_body(iot, http):
    iot.inject_faults(status=503, count=1)
    failed = _iot(http, iot, "devices")
    assert (failed.status_code, failed.json()) == (503, {"error": "service unavailable"})
    assert _iot(http, iot, "devices").status_code == 200


def test_iot_throttle_answers_429_with_retry_after(iot, http):
    iot.throttle_next(1, retry_after=2)
    throttled = _iot(http, iot, "devices")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "2")
    assert _iot(http, iot, "devices").status_code == 200


# -- lifecycle ------------------------------------------------------------------------------------


def test_stop_closes_the_port_and_ends_the_server_threads(tiny_street, http):
    before = set(threading.enumerate())  # other tests' session-scoped servers may still be running
    with GridServer(tiny_street, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        url = server.base_url
        assert _token(http, server).status_code == 200  # leaves a keep-alive connection open
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/v2/grids", timeout=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("GridServer-") and t not in before]


def test_serve_forever_serves_both_platforms_until_stopped(tiny_street, http):
    ready: list = []
    started, stop = threading.Event(), threading.Event()
    runner = threading.Thread(
        target=serve_forever,
        args=(tiny_street,),
        daemon=True,
        kwargs=dict(
            grid_port=0,
            iot_port=0,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_key=API_KEY,
            on_ready=lambda grid, iot: (ready.append((grid, iot)), started.set()),
            stop=stop,
        ),
    )
    runner.start()
    assert started.wait(60), "the servers did not start"  # a loaded CI machine can take over a second
    grid, iot = ready[0]
    assert _token(http, grid).status_code == 200
    assert _iot(http, iot, "devices").status_code == 200
    stop.set()
    runner.join(5)
    assert not runner.is_alive()


# -- the generator's street -----------------------------------------------------------------------


def _generator_missing() -> bool:
    """True until the generator exists (a function in the package or a ``generate`` module)."""
    package = importlib.import_module("islandbridge.devtools.simulator")
    return (
        not hasattr(package, "generate")
        and importlib.util.find_spec("islandbridge.devtools.simulator.generate") is None
    )


@pytest.mark.skipif(
    _generator_missing(), reason="islandbridge.devtools.simulator.generate is not written yet"
)
def test_every_endpoint_pages_through_the_generated_street(grid_server, iot_server, street_dir, http):
    """Needs the generator (``islandbridge.devtools.simulator.generate``); built on the conftest fixtures."""
    from tests.conftest import GRID_CLIENT

    token = _token(http, grid_server, *GRID_CLIENT).json()["data"]["access_token"]
    for endpoint, id_field in {
        "grids": "grid_code",
        "workers": "worker_id",
        "residents": "person_id",
        "events": "event_id",
        "visits": "visit_id",
    }.items():
        seen, page = [], 1
        while chunk := _ids(
            _list(http, grid_server, endpoint, token=token, page=page, page_size=100), id_field
        ):
            seen += chunk
            page += 1
        expected = json.loads((street_dir / "grid" / f"{endpoint}.json").read_text(encoding="utf-8"))
        assert sorted(seen) == sorted(item[id_field] for item in expected), endpoint
    _assert_iot_serves_everything(http, iot_server, street_dir / "iot")


def _assert_iot_serves_everything(http: httpx.Client, server: IotServer, folder: Path) -> None:
    from tests.conftest import IOT_KEY

    devices = _iot(http, server, "devices", key=IOT_KEY).json()["devices"]
    assert devices == json.loads((folder / "devices.json").read_text(encoding="utf-8"))
    holders, offset = [], 0
    while items := _iot(http, server, "cardholders", key=IOT_KEY, offset=offset, limit=1000).json()["items"]:
        holders += items
        offset += len(items)
    expected = json.loads((folder / "cardholders.json").read_text(encoding="utf-8"))
    assert sorted(h["holder_id"] for h in holders) == sorted(h["holder_id"] for h in expected)
    events, cursor = [], None
    while True:
        page = _iot(http, server, "events", key=IOT_KEY, limit=5000, **({"cursor": cursor} if cursor else {}))
        events += page.json()["events"]
        cursor = page.json()["next_cursor"]
        if not page.json()["has_more"]:
            break
    lines = [
        line for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    assert events == [json.loads(line) for line in lines]
