"""The grid platform connector against the simulated platform (a real server on loopback)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from islandbridge.config import Secret, SourceSettings, parse_as_of
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.devtools.simulator.servers import GridServer
from islandbridge.errors import ConfigError, FatalSourceError, RetriableError
from islandbridge.landing.zone import LandingWriter
from tests.conftest import AS_OF, GRID_CLIENT
from tests.connectors.support import FakeTime, Tripwire

AS_OF_END = parse_as_of(AS_OF.isoformat())
STREAMS = {
    "grids": "grid_code",
    "workers": "worker_id",
    "residents": "person_id",
    "events": "event_id",
    "visits": "visit_id",
}


def connector(server: GridServer, fake: FakeTime | None = None, **options):
    settings = SourceSettings(
        "grid",
        "grid_rest",
        {
            "base_url": server.base_url,
            "client_id": GRID_CLIENT[0],
            "client_secret": Secret(GRID_CLIENT[1], "test"),
            **options,
        },
    )
    grid = build_connector(settings)
    grid.pacing = (fake or FakeTime()).pacing()
    return grid


def run(grid, root: Path, run_id: str, state=None, as_of=AS_OF_END, wrap=None):
    """One extraction into the landing zone: ``(state, manifest)``."""
    writer = LandingWriter.open(root.as_uri(), run_id, "grid", grid.streams())
    sink = wrap(writer) if wrap else writer
    new_state = grid.extract(ExtractContext(run_id, as_of, state or {}, sink))
    return new_state, writer.close(new_state)


def landed(root: Path, run_id: str, stream: str) -> list[dict]:
    return pq.read_table(root / run_id / "grid" / stream).to_pylist()


def source_items(street_dir: Path, stream: str) -> list[dict]:
    return json.loads((street_dir / "grid" / f"{stream}.json").read_text(encoding="utf-8"))


def test_full_extraction_lands_every_item_once(grid_server, street_dir, tmp_path):
    """Every item of every list is landed exactly once, its fields as the API sent them (as text)."""
    _, manifest = run(connector(grid_server, page_size=50), tmp_path, "r1")
    for stream, key in STREAMS.items():
        rows = landed(tmp_path, "r1", stream)
        expected = source_items(street_dir, stream)
        assert sorted(r[key] for r in rows) == sorted(i[key] for i in expected), stream
        assert len({r["_record_key"] for r in rows}) == len(expected)
        assert manifest["streams"][stream]["landed"] == len(expected)
    first = {r["person_id"]: r for r in landed(tmp_path, "r1", "residents")}
    item = source_items(street_dir, "residents")[0]
    assert first[item["person_id"]]["name"] == item["name"]
    assert first[item["person_id"]]["tags"] == json.dumps(item["tags"], ensure_ascii=False, sort_keys=True)


def test_expired_token_under_http_200_is_refreshed_and_paging_continues(grid_server, street_dir, tmp_path):
    """After the vendor's HTTP 200 + code 40101 the connector gets a new token and misses nothing."""
    grid = connector(grid_server, page_size=50)
    run(grid, tmp_path, "r1", wrap=lambda s: Tripwire(s, "residents", 60, grid_server.expire_tokens))
    logins = [r for r in grid_server.requests if r.path.endswith("/auth/token")]
    assert len(logins) == 2
    assert len(landed(tmp_path, "r1", "residents")) == len(source_items(street_dir, "residents"))


def test_bad_credentials_are_fatal_naming_the_code_not_the_secret(grid_server):
    """HTTP 401 / code 40100 on /auth/token is a FatalSourceError that never repeats the secret."""
    grid = connector(grid_server, client_secret=Secret("wrong-secret-9f3a", "test"))
    with pytest.raises(FatalSourceError) as caught:
        grid.extract(ExtractContext("r1", AS_OF_END, {}, _NullSink()))
    message = str(caught.value)
    assert "40100" in message and "/auth/token" in message
    assert "wrong-secret-9f3a" not in message and GRID_CLIENT[1] not in message


def test_non_zero_code_under_http_200_is_fatal_with_endpoint_and_code(grid_server):
    """A business error (here 40001, page_size over the vendor's maximum) is fatal, not retried."""
    grid = connector(grid_server)
    grid.page_size = 600  # the config refuses this; pretend the vendor lowered its maximum
    with pytest.raises(FatalSourceError, match=r"/api/v2/grids.*code 40001.*page_size"):
        grid.extract(ExtractContext("r1", AS_OF_END, {}, _NullSink()))


def test_incremental_rerun_lands_nothing_and_counts_the_boundary_as_duplicates(grid_server, tmp_path):
    """``updated_after`` is inclusive: the re-read records at the watermark are duplicates, not rows."""
    grid = connector(grid_server, page_size=50)
    state, _ = run(grid, tmp_path, "r1")
    state2, manifest = run(grid, tmp_path, "r2", state=state)
    for stream in STREAMS:
        counts = manifest["streams"][stream]
        assert counts["landed"] == 0, stream
        assert counts["read"] == counts["duplicates"] == len(state[stream]["boundary"]) >= 1
    assert state2 == state


def test_record_edited_between_runs_is_landed_once_in_the_next_run(grid_server, tmp_path):
    """An edit after a run moves the record past the watermark; the next run lands just that version."""
    grid = connector(grid_server)
    state, _ = run(grid, tmp_path, "r1")
    edited = grid_server.edit("workers", "W0003", phone="13900000000")
    _, manifest = run(grid, tmp_path, "r2", state=state, as_of=_later(edited["update_time"]))
    assert [r["worker_id"] for r in landed(tmp_path, "r2", "workers")] == ["W0003"]
    assert manifest["streams"]["residents"]["landed"] == 0


def test_edit_during_paging_misses_nothing_and_doubles_nothing(grid_server, street_dir, tmp_path):
    """Records moved to the end mid-paging (one not read yet, one already read) are each landed once."""
    order = sorted(source_items(street_dir, "residents"), key=lambda i: (i["update_time"], i["person_id"]))
    ahead, behind = order[130]["person_id"], order[10]["person_id"]
    as_of = AS_OF_END + dt.timedelta(days=30)  # the edits are stamped after the newest record
    grid = connector(grid_server, page_size=50)
    run(grid, tmp_path, "calm", as_of=as_of)
    grid_server.edit_during_paging("residents", after_page=1, item_ids=[ahead, behind], status="已迁出")
    _, manifest = run(grid, tmp_path, "busy", as_of=as_of)
    calm, busy = landed(tmp_path, "calm", "residents"), landed(tmp_path, "busy", "residents")
    assert sorted(r["person_id"] for r in busy) == sorted(r["person_id"] for r in calm)
    assert {r["person_id"]: r["status"] for r in busy if r["person_id"] in (ahead, behind)} == {
        ahead: "已迁出",
        behind: "已迁出",
    }
    counts = manifest["streams"]["residents"]
    assert counts["landed"] == len(calm) and counts["read"] == counts["landed"] + counts["duplicates"]


def test_429_waits_for_retry_after(grid_server, tmp_path):
    """A 429's Retry-After is what the connector sleeps before asking again."""
    fake = FakeTime()
    grid_server.throttle_next(2, retry_after=3)
    run(connector(grid_server, fake), tmp_path, "r1")
    assert fake.sleeps[:2] == [3.0, 3.0]
    assert [r.status for r in grid_server.requests[:3]] == [429, 429, 200]


def test_retry_after_is_capped(grid_server, tmp_path):
    """A vendor asking for an hour's pause gets ``max_retry_after_s`` at most."""
    fake = FakeTime()
    grid_server.throttle_next(1, retry_after=3600)
    run(connector(grid_server, fake, max_retry_after_s=5, max_retry_s=60), tmp_path, "r1")
    assert fake.sleeps == [5.0]


def test_gateway_502_html_is_retried_then_succeeds(grid_server, street_dir, tmp_path):
    """The gateway's HTML 502 pages are transient: backoff, retry, and the data is complete."""
    fake = FakeTime()
    grid_server.inject_faults(502, count=2, html=True, path_prefix="/api/v2/residents")
    run(connector(grid_server, fake), tmp_path, "r1")
    assert len(fake.sleeps) == 2 and all(0 <= s <= 1.0 for s in fake.sleeps)
    assert [r.status for r in grid_server.requests if r.path.endswith("residents")] == [502, 502, 200]
    assert len(landed(tmp_path, "r1", "residents")) == len(source_items(street_dir, "residents"))


def test_spent_retry_budget_raises_retriable_naming_endpoint_status_and_attempts(grid_server):
    """When the gateway keeps failing, RetriableError says where, what and how often it was tried."""
    fake = FakeTime()
    grid_server.inject_faults(503, count=10, html=True, path_prefix="/api/v2/residents")
    grid = connector(grid_server, fake, max_attempts=3)
    with pytest.raises(RetriableError) as caught:
        grid.extract(ExtractContext("r1", AS_OF_END, {}, _NullSink()))
    message = str(caught.value)
    assert "/api/v2/residents" in message and "HTTP 503" in message and "3 attempts" in message
    assert len(fake.sleeps) == 2


def test_seconds_budget_ends_retries_before_attempts_do(grid_server):
    """``max_retry_s`` bounds a request in time even when attempts remain."""
    fake = FakeTime()
    grid_server.throttle_next(10, retry_after=4)
    grid = connector(grid_server, fake, max_attempts=10, max_retry_s=10)
    with pytest.raises(RetriableError, match="HTTP 429"):
        grid.extract(ExtractContext("r1", AS_OF_END, {}, _NullSink()))
    assert fake.sleeps == [4.0, 4.0]


def test_a_silent_server_times_out_and_is_retried_within_the_budget(grid_server, tmp_path):
    """A socket that accepts but never answers ends in RetriableError naming the timeout, not a hang."""
    fake = FakeTime()
    with socket.create_server(("127.0.0.1", 0)) as silent:
        grid = connector(grid_server, fake, timeout_s=0.2, max_attempts=2)
        grid.base_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(RetriableError, match=r"/api/v2/auth/token.*2 attempts.*ReadTimeout"):
            grid.extract(ExtractContext("r1", AS_OF_END, {}, _NullSink()))
    assert len(fake.sleeps) == 1


def test_logs_carry_no_token_secret_or_personal_data(grid_server, street_dir, tmp_path, caplog):
    """A full run at DEBUG, with a refresh and retries, logs neither credentials nor names or phones."""
    caplog.set_level(logging.DEBUG)
    grid_server.throttle_next(1, retry_after=1)
    grid_server.inject_faults(502, count=1, html=True)
    grid = connector(grid_server, page_size=100)
    run(grid, tmp_path, "r1", wrap=lambda s: Tripwire(s, "residents", 150, grid_server.expire_tokens))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/api/v2/residents" in text  # the log is not simply empty
    secrets = [GRID_CLIENT[1], "Bearer", *getattr(grid_server, "_tokens", {})]
    personal = [v for i in source_items(street_dir, "residents") for v in (i["name"], i["phone"]) if v]
    assert [s for s in secrets + personal if s in text] == []


def test_page_size_over_the_vendor_maximum_fails_at_build_time(grid_server):
    """A configuration the vendor would refuse fails when the pipeline is built, listing the problem."""
    with pytest.raises(ConfigError, match=r"page_size: expected an integer in 1\.\.500"):
        connector(grid_server, page_size=501)


def test_a_secret_written_into_the_config_is_refused(grid_server):
    """The client secret must be a reference ({env: ...}), never a plain string in a file."""
    with pytest.raises(ConfigError, match="client_secret"):
        connector(grid_server, client_secret="plain-text")


def _later(local_time: str) -> dt.datetime:
    return parse_as_of(local_time) + dt.timedelta(seconds=1)


class _NullSink:
    """Takes records and forgets them: for tests that expect the extraction to fail."""

    def read(self, stream, n=1):
        pass

    def write(self, stream, records):
        return len(list(records))

    def quarantine(self, stream, record_key, reason, record):
        pass

    def duplicate(self, stream, n=1):
        pass

    def deleted(self, stream, record_keys):
        pass
