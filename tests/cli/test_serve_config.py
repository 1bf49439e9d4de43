"""``islandbridge serve --write-config``: a living street is served and a configuration that syncs it is
written, with no Python (docs/simulator.md, 'Syncing a living street from the command line')."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time

from islandbridge.pipeline import load_settings


def _free_ports(n: int) -> list[int]:
    """``n`` different free ports: their sockets are bound together, so no two calls give the same one."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_serve_writes_a_configuration_for_the_living_street_it_serves(tmp_path):
    from islandbridge.devtools.simulator import simulate

    street = tmp_path / "street"
    simulate(street, residents=300, seed=3, days=2, as_of=dt.date(2026, 11, 20))
    grid, iot = _free_ports(2)
    config = tmp_path / "run" / "islandbridge.yml"
    env = {**os.environ, "IB_GRID_CLIENT_SECRET": "s", "IB_IOT_API_KEY": "k", "IB_GRID_CLIENT_ID": "cid"}
    argv = ["serve", str(street), "--day", "2026-11-21", "--grid-port", str(grid), "--iot-port", str(iot)]
    server = subprocess.Popen(
        [sys.executable, "-m", "islandbridge.cli", *argv, "--write-config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not config.exists() and time.monotonic() < deadline:  # written once both ports listen
            time.sleep(0.2)
        assert (street / "live" / "day").read_text(encoding="utf-8").strip() == "2026-11-21"
        settings = load_settings(config, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
    options = {name: source.options for name, source in settings.sources.items()}
    assert options["grid"]["base_url"] == f"http://127.0.0.1:{grid}" and options["grid"]["client_id"] == "cid"
    assert options["iot"]["base_url"] == f"http://127.0.0.1:{iot}"
    assert str((street / "live" / "registry" / "rrs.sqlite").resolve()) in str(options["registry"]["url"])
    assert str(options["civil"]["path"]) == str((street / "live" / "civil").resolve())
    assert (config.parent / "secrets" / "person.key").exists()


def test_serve_on_a_taken_port_says_which_without_first_claiming_to_serve(tmp_path, monkeypatch, capsys):
    """A port already in use fails before anything is announced: exit 2 and one line naming the port
    and the options that move it, no ``grid: http://…`` line and no traceback."""
    from islandbridge.cli import main
    from islandbridge.devtools.simulator import generate

    street = tmp_path / "street"
    generate(street, residents=300, seed=3)
    for name, value in {"IB_GRID_CLIENT_SECRET": "s", "IB_IOT_API_KEY": "k"}.items():
        monkeypatch.setenv(name, value)
    (iot,) = _free_ports(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        grid = taken.getsockname()[1]
        status = main(["serve", str(street), "--grid-port", str(grid), "--iot-port", str(iot)])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and f"127.0.0.1:{grid}" in err
    assert "--grid-port" in err and "--iot-port" in err
