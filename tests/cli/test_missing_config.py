"""A command run without a configuration file says how to name one."""

from __future__ import annotations

from islandbridge.cli import main


def test_a_missing_default_configuration_names_the_ways_to_give_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ISLANDBRIDGE_CONFIG", raising=False)
    assert main(["runs"]) == 2
    err = capsys.readouterr().err
    assert "configuration file not found" in err and "--config" in err and "ISLANDBRIDGE_CONFIG" in err
