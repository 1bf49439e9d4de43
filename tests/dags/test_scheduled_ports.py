"""The api-server's port (`scheduled.serve`): chosen free, it may be taken by another process before the
server binds it; the server then moves to another port, and only a port its own process listens on counts.
A real server (Python's ``http.server``) and a real socket holding the port, no Airflow needed."""

from __future__ import annotations

import os
import socket
import sys

import httpx
import pytest

from islandbridge.devtools.scheduled import SchedulerRunError, free_port, serve


def _http_server(tmp_path):
    return lambda port: [
        sys.executable,
        "-m",
        "http.server",
        "-d",
        str(tmp_path),
        "-b",
        "127.0.0.1",
        str(port),
    ]


@pytest.fixture
def taken():
    """A loopback port another process won first: bound and listening here, never answering."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_server_whose_port_was_taken_first_starts_again_on_the_next_port(tmp_path, taken):
    log = tmp_path / "server.log"
    proc, port = serve(_http_server(tmp_path), dict(os.environ), log, ports=[taken, free_port()], path="/")
    try:
        assert port != taken and proc.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        assert "address already in use" in log.read_text(encoding="utf-8").lower()  # the first try's
    finally:
        proc.terminate()
        proc.wait()


def test_when_every_port_is_taken_the_error_names_them(tmp_path, taken):
    with pytest.raises(SchedulerRunError, match=f"ports {taken} were each taken by another process"):
        serve(_http_server(tmp_path), dict(os.environ), tmp_path / "server.log", ports=[taken], path="/")


def test_a_server_that_exits_for_another_reason_is_not_retried(tmp_path):
    log = tmp_path / "server.log"
    failing = lambda port: [sys.executable, "-c", f"print('no config for port {port}'); raise SystemExit(3)"]  # noqa: E731
    with pytest.raises(SchedulerRunError, match="exited with status 3") as refused:
        serve(failing, dict(os.environ), log, ports=[free_port(), free_port()], path="/")
    assert "no config for port" in str(refused.value)
    assert log.read_text(encoding="utf-8").count("no config") == 1
