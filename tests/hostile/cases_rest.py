"""Misbehaving grid and IoT servers, as data: each case is a handler for ``HostileServer`` and an outcome.

The handlers come from ``tests.connectors.hostile_http`` (``grid_api``, ``iot_api``): a case changes one
thing — a field, a page, a header, the body's bytes — and says what the connector must make of it.
Retries cost no wall time (the connector's clock is fake); trickles and bombs are bounded by the
connectors' own request deadline and size limit, set small in ``options``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from islandbridge.errors import FatalSourceError, RetriableError
from tests.connectors.hostile_http import (
    Reply,
    Seen,
    grid_api,
    grid_item,
    gzip_bomb,
    iot_api,
    json_reply,
    raw_json_reply,
    slowly,
)
from tests.hostile.corpus import Expect, accepted, error, quarantined
from tests.hostile.payloads import INJECTIONS, UNICODE_TRICKS

Handler = Callable[[Seen], Reply]


@dataclass(frozen=True)
class ApiCase:
    id: str
    source: str  # "grid" or "iot"
    handler: Callable[[], Handler]
    expect: Expect
    options: Mapping[str, Any] = field(default_factory=dict)
    landed_values: Mapping[str, Any] = field(default_factory=dict)  # column -> landed text of the first row


def workers(*items: Any) -> Callable[[], Handler]:
    return lambda: grid_api({"workers": list(items)})


def grid_body(text: str, content_type: str = "application/json", status: int = 200) -> Callable[[], Handler]:
    """A grid whose /workers answers ``text`` as written."""

    def make() -> Handler:
        api = grid_api({})
        return lambda r: raw_json_reply(text, status, content_type) if r.path.endswith("/workers") else api(r)

    return make


def grid_reply(reply: Callable[[Seen], Reply | None]) -> Callable[[], Handler]:
    def make() -> Handler:
        api = grid_api({"workers": [grid_item(1)]})
        return lambda r: (reply(r) if r.path.endswith("/workers") else None) or api(r)

    return make


def page(items: list[Any], total: Any, **extra: Any) -> Reply:
    data = {"total": total, "page": 1, "page_size": 500, "items": items, **extra}
    return json_reply({"code": 0, "msg": "ok", "data": data})


# ------------------------------------------------------------------------------------------ grid


def _grid_fields() -> list[ApiCase]:
    cases = [
        ApiCase(
            f"grid_name_{kind}",
            "grid",
            workers(grid_item(1, name=text)),
            accepted(landed=1),
            landed_values={"name": text},
        )
        for kind, text in (*UNICODE_TRICKS, *INJECTIONS)
    ]
    cases += [
        ApiCase(
            f"grid_id_{kind}",
            "grid",
            workers(grid_item(1, worker_id=text)),
            accepted(landed=1),
            landed_values={"worker_id": text},
        )
        for kind, text in (("sql", "W1'; DROP TABLE x;--"), ("traversal", "../../etc"), ("bidi", "W\u202e1"))
    ]
    return cases


def _grid_times() -> list[ApiCase]:
    times: list[tuple[str, Any, Expect]] = [
        ("far_future", "9999-12-31 23:59:59", quarantined("broken clock")),
        ("year_2099", "2099-01-01 00:00:00", quarantined("broken clock")),
        ("epoch_1970", "1970-01-01 00:00:00", accepted(landed=1)),
        ("iso_t", "2026-11-01T08:00:00", quarantined("update_time")),
        ("integer", 1763600000, quarantined("update_time")),
        ("null", None, quarantined("update_time")),
        ("empty", "", quarantined("update_time")),
        ("feb_30", "2026-02-30 00:00:00", quarantined("update_time")),
        ("zeros", "0000-00-00 00:00:00", quarantined("update_time")),
        ("hour_99", "2026-11-01 99:99:99", quarantined("update_time")),
        ("fullwidth", "２０２６-１１-０１ ０８:００:００", quarantined("update_time")),
    ]
    return [
        ApiCase(f"grid_time_{kind}", "grid", workers(grid_item(1, update_time=value)), expect)
        for kind, value in [(k, v) for k, v, _ in times]
        for expect in [next(e for k2, _, e in times if k2 == kind)]
    ]


def _grid_items() -> list[ApiCase]:
    return [
        ApiCase(
            "grid_item_null", "grid", workers(None, grid_item(2)), quarantined("the item is null", landed=1)
        ),
        ApiCase("grid_item_string", "grid", workers("W1", grid_item(2)), quarantined("string", landed=1)),
        ApiCase(
            "grid_item_number", "grid", workers(7, grid_item(2)), quarantined("number|integer", landed=1)
        ),
        ApiCase("grid_item_list", "grid", workers([1], grid_item(2)), quarantined("list|array", landed=1)),
        ApiCase("grid_id_null", "grid", workers(grid_item(1, worker_id=None)), quarantined("worker_id")),
        ApiCase(
            "grid_id_missing",
            "grid",
            workers({"name": "x", "update_time": "2026-11-01 08:00:00"}),
            quarantined("worker_id"),
        ),
        ApiCase(
            "grid_identical_twice",
            "grid",
            workers(grid_item(1), grid_item(1)),
            accepted(landed=1),
        ),
        ApiCase(
            "grid_same_key_other_content",
            "grid",
            workers(grid_item(1), grid_item(1, grid_code="G9")),
            quarantined("different content", landed=1),
        ),
    ]


def _grid_pages() -> list[ApiCase]:
    def always(reply: Reply) -> Callable[[Seen], Reply]:
        return lambda r: reply

    return [
        ApiCase(
            "grid_total_as_string",
            "grid",
            grid_reply(always(page([grid_item(1)], "1"))),
            error(FatalSourceError, "total"),
        ),
        ApiCase(
            "grid_total_negative",
            "grid",
            grid_reply(always(page([grid_item(1)], -1))),
            error(FatalSourceError, "total"),
        ),
        ApiCase(
            "grid_total_null",
            "grid",
            grid_reply(always(page([grid_item(1)], None))),
            error(FatalSourceError, "total"),
        ),
        ApiCase(
            "grid_total_bool",
            "grid",
            grid_reply(always(page([grid_item(1)], True))),
            error(FatalSourceError, "total"),
        ),
        ApiCase(
            "grid_total_more_than_served",
            "grid",
            grid_reply(always(page([grid_item(1)], 5))),
            error(RetriableError, "total"),
        ),
        ApiCase(
            "grid_same_page_forever",
            "grid",
            grid_reply(always(page([grid_item(n) for n in range(1, 3)], 1000, page_size=2))),
            error(FatalSourceError, "ignores the page parameter"),
            options={"page_size": 2},
        ),
        ApiCase(
            "grid_items_is_object",
            "grid",
            grid_reply(always(page({"a": 1}, 1))),
            error(FatalSourceError, "items"),
        ),  # type: ignore[arg-type]
        ApiCase(
            "grid_items_missing",
            "grid",
            grid_reply(always(json_reply({"code": 0, "data": {"total": 0}}))),
            error(FatalSourceError, "items"),
        ),
        ApiCase(
            "grid_data_null",
            "grid",
            grid_reply(always(json_reply({"code": 0, "data": None}))),
            error(FatalSourceError, "data"),
        ),
        ApiCase(
            "grid_code_nonzero",
            "grid",
            grid_reply(always(json_reply({"code": 50001, "msg": "内部错误"}))),
            error(None, "50001"),
        ),
        ApiCase(
            "grid_code_string",
            "grid",
            grid_reply(always(json_reply({"code": "0", "data": {"total": 0, "items": []}}))),
            error(None, "code"),
        ),
    ]


def _http_status(status: int, headers: Mapping[str, str] | None = None) -> Callable[[Seen], Reply]:
    return lambda r: json_reply({"code": status, "msg": "x"}, status, **dict(headers or {}))


def _grid_http() -> list[ApiCase]:
    cases = [
        ApiCase(f"grid_http_{s}", "grid", grid_reply(_http_status(s)), error(cls, pattern))
        for s, cls, pattern in (
            (400, FatalSourceError, "400"),
            (401, FatalSourceError, "token refused"),
            (403, FatalSourceError, "403"),
            (404, FatalSourceError, "404"),
            (418, FatalSourceError, "418"),
            (500, RetriableError, "500"),
            (502, RetriableError, "502"),
            (503, RetriableError, "503"),
        )
    ]
    for kind, value in (
        ("huge", "99999999"),
        ("negative", "-5"),
        ("float", "1.5"),
        ("nan", "NaN"),
        ("date_past", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("date_far_future", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("garbage", "soon-ish"),
        ("empty", ""),
    ):
        cases.append(
            ApiCase(
                f"grid_429_retry_after_{kind}",
                "grid",
                grid_reply(_http_status(429, {"Retry-After": value})),
                error(RetriableError, "429"),
            )
        )
    return cases


def _grid_bodies() -> list[ApiCase]:
    bodies: list[tuple[str, str, str, Expect]] = [
        ("invalid_json", "{", "application/json", error(None, "JSON|json")),
        ("empty_body", "", "application/json", error(None, "JSON|json|empty")),
        ("top_level_array", "[]", "application/json", error(FatalSourceError, "")),
        ("top_level_null", "null", "application/json", error(FatalSourceError, "")),
        (
            "nan_literal",
            '{"code": 0, "data": {"total": NaN, "items": []}}',
            "application/json",
            error(FatalSourceError, "total"),
        ),
        (
            "huge_exponent",
            '{"code": 0, "data": {"total": 1e400, "items": []}}',
            "application/json",
            error(FatalSourceError, "total"),
        ),
        ("deep_nesting", "[" * 100_000 + "]" * 100_000, "application/json", error(FatalSourceError, "")),
        (
            "html_label",
            '{"code": 0, "data": {"total": 0, "items": []}}',
            "text/html",
            error(FatalSourceError, "text/html"),
        ),
        ("xml_label", "<a/>", "application/xml", error(FatalSourceError, "")),
        ("html_error_page", "<html>502 Bad Gateway</html>", "text/html", error(RetriableError, "HTML body")),
        (
            "no_content_type",
            '{"code": 0, "data": {"total": 0, "items": []}}',
            "",
            accepted(landed=0),
        ),
        (
            "bom_prefixed",
            '\ufeff{"code": 0, "data": {"total": 0, "items": []}}',
            "application/json",
            accepted(landed=0),
        ),
        (
            "duplicate_keys",
            '{"code": 0, "data": {"total": 1, "items": [{"worker_id": "W1", "worker_id": "W2", '
            '"name": "x", "grid_code": "G", "active": true, "update_time": "2026-11-01 08:00:00"}]}}',
            "application/json",
            accepted(landed=1),
        ),
    ]
    return [ApiCase(f"grid_body_{k}", "grid", grid_body(t, ct), e) for k, t, ct, e in bodies]


def _grid_transport() -> list[ApiCase]:
    bomb = gzip_bomb(16 * 2**20)
    return [
        ApiCase(
            "grid_gzip_bomb",
            "grid",
            grid_reply(
                lambda r: Reply(200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
            ),
            error(FatalSourceError, "max_response_mb"),
            options={"max_response_mb": 2},
        ),
        ApiCase(
            "grid_plain_oversize",
            "grid",
            grid_reply(lambda r: page([grid_item(n, name="x" * 5000) for n in range(600)], 600)),
            error(FatalSourceError, "max_response_mb"),
            options={"max_response_mb": 1},
        ),
        ApiCase(
            "grid_gzip_garbage",
            "grid",
            grid_reply(
                lambda r: Reply(
                    200, b"not gzip at all", {"Content-Type": "application/json", "Content-Encoding": "gzip"}
                )
            ),
            error(None, ""),
        ),
        ApiCase(
            "grid_unknown_encoding",
            "grid",
            grid_reply(
                lambda r: Reply(
                    200, b"{}", {"Content-Type": "application/json", "Content-Encoding": "x-evil"}
                )
            ),
            error(None, ""),
        ),
        ApiCase(
            "grid_trickle",
            "grid",
            grid_reply(lambda r: Reply(200, slowly(json.dumps({"code": 0}).encode(), 0.3))),
            error(RetriableError, "request_deadline_s"),
            options={"request_deadline_s": 1, "timeout_s": 5},
        ),
        ApiCase(
            "grid_redirect_to_metadata_service",
            "grid",
            grid_reply(lambda r: Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})),
            error(FatalSourceError, "302"),
        ),
        ApiCase(
            "grid_redirect_to_file",
            "grid",
            grid_reply(lambda r: Reply(301, b"", {"Location": "file:///etc/passwd"})),
            error(FatalSourceError, "301"),
        ),
    ]


def _grid_tokens() -> list[ApiCase]:
    def auth(answer: Reply) -> Callable[[], Handler]:
        def make() -> Handler:
            api = grid_api({"workers": [grid_item(1)]})
            return lambda r: answer if r.path.endswith("/auth/token") else api(r)

        return make

    def token(data: Any) -> Reply:
        return json_reply({"code": 0, "msg": "ok", "data": data})

    return [
        ApiCase(
            "grid_token_missing",
            "grid",
            auth(token({"expires_in": 3600})),
            error(FatalSourceError, "access_token"),
        ),
        ApiCase(
            "grid_token_integer",
            "grid",
            auth(token({"access_token": 12345, "expires_in": 3600})),
            error(FatalSourceError, "access_token"),
        ),
        ApiCase(
            "grid_token_empty",
            "grid",
            auth(token({"access_token": "", "expires_in": 3600})),
            error(FatalSourceError, "access_token"),
        ),
        ApiCase(
            "grid_token_crlf",
            "grid",
            auth(token({"access_token": "a\r\nX: 1", "expires_in": 3600})),
            error(FatalSourceError, "access_token"),
        ),
        ApiCase(
            "grid_token_non_ascii",
            "grid",
            auth(token({"access_token": "令牌", "expires_in": 3600})),
            error(FatalSourceError, "access_token"),
        ),
        ApiCase("grid_token_data_null", "grid", auth(token(None)), error(FatalSourceError, "")),
        ApiCase(
            "grid_auth_refused",
            "grid",
            auth(json_reply({"code": 40101, "msg": "bad secret"})),
            error(FatalSourceError, ""),
        ),
        ApiCase("grid_auth_http_401", "grid", auth(json_reply({}, 401)), error(FatalSourceError, "401")),
    ]


# ------------------------------------------------------------------------------------------ iot


def events(items: list[Any], has_more: Any = False, next_cursor: Any = "A") -> Callable[[], Handler]:
    return lambda: iot_api({None: {"events": items, "next_cursor": next_cursor, "has_more": has_more}})


def event(n: int = 1, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}", "ts": 1_763_600_000_000, "device_id": "D1", "type": "heartbeat", **fields}


AS_OF_MS = 1_795_190_400_000  # 2026-11-21T00:00+08:00, the as-of of every case


def iot_raw(text: str) -> Callable[[], Handler]:
    return lambda: iot_api({None: raw_json_reply(text)})


def _iot_cases() -> list[ApiCase]:
    ts: list[tuple[str, Any, Expect]] = [
        ("zero", 0, quarantined("clock")),
        ("negative", -1, quarantined("clock")),
        ("seconds_not_ms", 1_763_600_000, quarantined("clock")),
        ("year_10000", 253_402_300_800_000, quarantined("clock")),
        ("as_of_plus_2_days", AS_OF_MS + 2 * 86_400_000, quarantined("clock")),
        ("as_of_plus_12_hours", AS_OF_MS + 12 * 3_600_000, accepted(landed=1)),
        ("float_ms", 1_763_600_000_000.5, accepted(landed=1)),
        ("string", "1763600000000", quarantined("ts")),
        ("iso_string", "2026-11-20T00:00:00Z", quarantined("ts")),
        ("bool", True, quarantined("ts")),
        ("null", None, quarantined("ts")),
        ("list", [1], quarantined("ts")),
    ]
    cases = [ApiCase(f"iot_ts_{k}", "iot", events([event(ts=v)]), e) for k, v, e in ts]
    cases += [
        ApiCase(
            f"iot_ts_raw_{k}",
            "iot",
            iot_raw(
                '{"events": [{"event_id": "e1", "ts": TS, "device_id": "D1"}], "next_cursor": "A", '
                '"has_more": false}'.replace("TS", v)
            ),
            quarantined("clock"),
        )
        for k, v in (
            ("inf", "Infinity"),
            ("neg_inf", "-Infinity"),
            ("1e308", "1e308"),
            ("huge_int", "9" * 400),
        )
    ]
    more: list[tuple[str, Any, Any, Expect]] = [
        ("string_true", "true", "A", error(FatalSourceError, "has_more")),
        ("string_false", "false", "A", error(FatalSourceError, "has_more")),
        ("integer_one", 1, "A", error(FatalSourceError, "has_more")),
        ("null", None, "A", error(FatalSourceError, "has_more")),
        ("true_without_cursor", True, None, error(FatalSourceError, "cursor did not move")),
        ("true_empty_cursor", True, "", error(FatalSourceError, "cursor did not move")),
        ("true_integer_cursor", True, 7, error(FatalSourceError, "next_cursor")),
    ]
    cases += [ApiCase(f"iot_has_more_{k}", "iot", events([event()], h, c), e) for k, h, c, e in more]
    cases += [
        ApiCase(
            "iot_cursor_points_to_itself",
            "iot",
            lambda: iot_api(
                {
                    None: {"events": [], "next_cursor": "A", "has_more": True},
                    "A": {"events": [], "next_cursor": "A", "has_more": True},
                }
            ),
            error(FatalSourceError, "cursor did not move"),
        ),
        ApiCase(
            "iot_cursor_long_cycle",
            "iot",
            lambda: iot_api(
                {
                    None: {"events": [], "next_cursor": "c0", "has_more": True},
                    **{
                        f"c{n}": {"events": [], "next_cursor": f"c{(n + 1) % 50}", "has_more": True}
                        for n in range(50)
                    },
                }
            ),
            error(FatalSourceError, "cycles"),
        ),
        ApiCase(
            "iot_events_not_a_list",
            "iot",
            iot_raw('{"events": {"a": 1}, "next_cursor": "A", "has_more": false}'),
            error(FatalSourceError, "events"),
        ),
        ApiCase(
            "iot_deep_nesting", "iot", iot_raw("[" * 100_000 + "]" * 100_000), error(FatalSourceError, "JSON")
        ),
        ApiCase(
            "iot_events_null",
            "iot",
            iot_raw('{"events": null, "next_cursor": "A", "has_more": false}'),
            error(FatalSourceError, "events"),
        ),
        ApiCase("iot_event_id_null", "iot", events([event(event_id=None)]), quarantined("event_id")),
        ApiCase("iot_event_repeated", "iot", events([event(), event()]), accepted(landed=1)),
        ApiCase(
            "iot_event_lone_surrogate",
            "iot",
            iot_raw(
                '{"events": [{"event_id": "e\\ud800", "ts": 1763600000000, "device_id": "D1"}], "next_cursor": "A", "has_more": false}'
            ),
            quarantined("surrogate"),
        ),
        ApiCase(
            "iot_event_nul_in_text",
            "iot",
            events([event(device_id="D\u00001")]),
            accepted(landed=1),
            landed_values={"device_id": "D\u00001"},
        ),
    ]
    cases += [
        ApiCase(
            f"iot_device_id_{k}",
            "iot",
            events([event(device_id=t)]),
            accepted(landed=1),
            landed_values={"device_id": t},
        )
        for k, t in (*UNICODE_TRICKS[:8], *INJECTIONS[:6])
    ]
    return cases


def rest_cases() -> list[ApiCase]:
    return [
        *_grid_fields(),
        *_grid_times(),
        *_grid_items(),
        *_grid_pages(),
        *_grid_http(),
        *_grid_bodies(),
        *_grid_transport(),
        *_grid_tokens(),
        *_iot_cases(),
    ]


CASES = rest_cases()
