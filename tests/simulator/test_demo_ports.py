"""`islandbridge demo --grid-port/--iot-port` (and `make demo`'s DEMO_GRID_PORT/DEMO_IOT_PORT): the
simulated APIs listen where the operator says, so the demo need not take ports another job uses."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from islandbridge.cli import main
from islandbridge.devtools import demo


def test_the_demo_takes_its_ports_from_the_command_line(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(demo, "run_demo", lambda **kwargs: seen.update(kwargs) or 0)
    assert main(["demo", "--workdir", str(tmp_path), "--grid-port", "18701", "--iot-port", "0"]) == 0
    assert seen["ports"] == (18701, 0)
    assert main(["demo", "--workdir", str(tmp_path)]) == 0
    assert seen["ports"] == demo.DEMO_PORTS == (8701, 8702)


def test_a_port_taken_or_zero_gives_a_free_one():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        assert demo._free(taken) == 0  # the server then binds any free port
    assert demo._free(taken) == taken


def test_make_demo_passes_its_port_variables():
    makefile = (Path(__file__).parents[2] / "Makefile").read_text(encoding="utf-8")
    assert "--grid-port $(DEMO_GRID_PORT) --iot-port $(DEMO_IOT_PORT)" in makefile


def test_a_port_out_of_range_or_given_twice_is_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(demo, "run_demo", lambda **kwargs: 0)
    for bad in ("-1", "70000", "http"):
        with pytest.raises(SystemExit) as exit_:
            main(["demo", "--workdir", str(tmp_path), "--grid-port", bad])
        assert exit_.value.code == 2
        assert "a port is a number from 0" in capsys.readouterr().err
    assert main(["demo", "--workdir", str(tmp_path), "--grid-port", "18701", "--iot-port", "18701"]) == 2
    assert "need two ports" in capsys.readouterr().err
