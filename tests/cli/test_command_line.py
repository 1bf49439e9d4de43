"""The command line teaches: flow order, examples and exit codes in --help, -v anywhere, read-only
commands that need no source secret, configuration typos named with the nearest valid key."""

from __future__ import annotations

import argparse
import datetime as dt

import duckdb
import pytest
import yaml

from islandbridge.cli import main, parser
from islandbridge.landing import raw

# The grid and IoT secrets are environment variables this test never sets.
CONFIG = {
    "street": {"code": "511403001"},
    "landing": {"url": "landing"},
    "warehouse": {"path": "warehouse/warehouse.duckdb"},
    "sources": {
        "grid": {
            "kind": "grid_rest",
            "base_url": "http://127.0.0.1:1",
            "client_id": "c",
            "client_secret": {"env": "IB_TEST_UNSET_GRID_SECRET"},
        },
        "iot": {
            "kind": "iot_rest",
            "base_url": "http://127.0.0.1:1",
            "api_key": {"env": "IB_TEST_UNSET_KEY"},
        },
    },
}
RUN_ID = "ib_20261120T160000Z"


def _subcommands(p: argparse.ArgumentParser, path=()):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _subcommands(child, (*path, name))
            return
    yield path, p


def test_every_command_shows_an_example_and_its_exit_statuses_in_help():
    missing = [
        " ".join(path)
        for path, p in _subcommands(parser())
        if "example:" not in (p.epilog or "") or "exit status:" not in (p.epilog or "")
    ]
    assert missing == []


def test_sql_says_it_is_for_operators_and_sends_analysts_to_the_snapshot_shell():
    """`sql` opens the whole warehouse (raw, the identity map); analysts use `shell` on the snapshot."""
    help_of = dict(_subcommands(parser()))
    text = " ".join(help_of[("sql",)].format_help().split())
    assert "for operators" in text and "raw tables" in text and "identity map" in text
    assert "Analysts use `islandbridge shell`" in text
    assert "snapshot" in " ".join(help_of[("shell",)].format_help().split())


def test_the_steps_are_listed_in_the_order_a_run_takes_them():
    names = list(next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices)
    steps = ["sync", "extract", "validate", "load", "reconcile", "build", "export", "publish"]
    assert names[: len(steps)] == steps


@pytest.mark.parametrize(
    "argv",
    [["-v", "runs"], ["runs", "-v"], ["quarantine", "-v", "list"], ["quarantine", "list", "-v"]],
)
def test_v_is_accepted_before_or_after_the_command(argv):
    assert parser().parse_args(argv).verbose == 1


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("IB_TEST_UNSET_GRID_SECRET", raising=False)
    monkeypatch.delenv("IB_TEST_UNSET_KEY", raising=False)
    (tmp_path / "islandbridge.yml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    (tmp_path / "warehouse").mkdir()
    con = raw.connect(str(tmp_path / "warehouse" / "warehouse.duckdb"))
    as_of = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
    raw.begin_run(con, RUN_ID, as_of, ["grid", "iot"], as_of)
    raw.finish_run(con, RUN_ID, "loaded", as_of)
    con.close()
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],
        ["quarantine", "list"],
        ["sql", "SELECT count(*) AS runs FROM meta.runs"],
        ["snapshot", "list"],
        ["explain", "--changes"],
    ],
)
def test_read_only_commands_need_no_source_secret(home, argv, capsys):
    assert main([*argv, "--config", str(home / "islandbridge.yml")]) == 0
    assert "is not set" not in capsys.readouterr().err


def test_snapshot_list_shows_when_each_was_published_in_shanghai_time(home, capsys, monkeypatch):
    from islandbridge.cli import operate
    from islandbridge.delivery.snapshot import Snapshot

    published = dt.datetime(2026, 11, 20, 16, 30, 5, 123456, tzinfo=dt.UTC)
    snapshot = Snapshot(RUN_ID, home / "s.duckdb", published, 2_500_000, True)
    monkeypatch.setattr(operate, "list_snapshots", lambda folder: [snapshot])
    assert main(["snapshot", "list", "--config", str(home / "islandbridge.yml")]) == 0
    assert f"* {RUN_ID}  published 2026-11-21 00:30:05+08:00  2.5 MB" in capsys.readouterr().out


def test_a_command_that_reads_the_sources_still_asks_for_their_secrets(home, capsys):
    assert main(["extract", "--as-of", "2026-11-20", "--config", str(home / "islandbridge.yml")]) == 2
    assert "IB_TEST_UNSET_GRID_SECRET is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "--as-of", "2026-11-20", "--source", "511403194310287757"],
        ["extract", "--as-of", "20261120 13800138000"],
        ["quarantine", "replay", "秦光明"],
        ["reconcile", "--as-of", "秦光明"],
    ],
)
def test_an_error_never_repeats_a_typed_id_number_phone_or_name(home, argv, capsys, monkeypatch):
    """An unknown --source, a --as-of that is no date, a source argument: the error says what was wrong
    without the text, which may be a person's (errors are pasted into tickets)."""
    monkeypatch.setenv("IB_TEST_UNSET_GRID_SECRET", "s")
    monkeypatch.setenv("IB_TEST_UNSET_KEY", "k")
    assert main([*argv, "--config", str(home / "islandbridge.yml")]) == 2
    err = capsys.readouterr().err
    assert "not repeated: it may hold personal data" in err
    for personal in ("511403194310287757", "13800138000", "秦光明"):
        assert personal not in err


def test_a_config_typo_is_reported_with_the_nearest_valid_key(home, capsys):
    bad = {**{k: v for k, v in CONFIG.items() if k != "warehouse"}, "warehous": {"path": "w.duckdb"}}
    (home / "bad.yml").write_text(yaml.safe_dump(bad), encoding="utf-8")
    assert main(["runs", "--config", str(home / "bad.yml")]) == 2
    assert "unknown key `warehous`, did you mean `warehouse`?" in capsys.readouterr().err


def test_sql_reports_a_bad_query_in_one_line(home, capsys):
    assert main(["sql", "SELEC 1", "--config", str(home / "islandbridge.yml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("islandbridge: error: query failed") and duckdb.__version__


def test_simulate_help_names_every_quirks_profile(capsys):
    from islandbridge.devtools.simulator.quirks import PROFILES

    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    missing = [name for name in PROFILES if name not in text.replace(", ", " ").split()]
    assert {"visitors", "homebound"} <= set(PROFILES) and missing == []


def test_runs_prints_its_times_in_shanghai_and_says_so(home, capsys):
    assert main(["runs", "--config", str(home / "islandbridge.yml")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "times in Asia/Shanghai (+08:00)"
    assert f"{RUN_ID}  as of 2026-11-21 00:00:00+08:00  loaded  finished 2026-11-21 00:00:00+08:00" in out
    assert "+00:00" not in out


def test_runs_shows_the_keys_a_source_no_longer_has_beside_the_accounting(home, capsys):
    """A run's deletions (``meta.run_sources.deleted``: keys gone from the source) are listed per source."""
    con = raw.connect(str(home / "warehouse" / "warehouse.duckdb"))
    con.execute(
        "INSERT INTO meta.run_sources VALUES (?, 'registry', 't_jm', 10, 9, 0, 1, 1, NULL), "
        "(?, 'registry', 't_hj', 5, 5, 0, 0, 2, NULL)",
        [RUN_ID, RUN_ID],
    )
    con.close()
    assert main(["runs", "--config", str(home / "islandbridge.yml")]) == 0
    table = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("    ")]
    header = next(row for row in table if row[0] == "source")
    assert header[-1] == "deleted"
    assert dict(zip(header, next(row for row in table if row[0] == "registry"), strict=True)) == {
        "source": "registry",
        "read": "15",
        "landed": "14",
        "quarantined": "0",
        "duplicates": "1",
        "deleted": "3",
    }


def test_runs_says_a_load_that_never_finished_and_how_to_complete_the_day(home, capsys, monkeypatch):
    """The advised commands run as printed: with the --config given to `runs`, without one for the default."""
    con = raw.connect(str(home / "warehouse" / "warehouse.duckdb"))
    as_of = dt.datetime(2026, 11, 21, 16, tzinfo=dt.UTC)
    raw.begin_run(con, "ib_20261121T160000Z", as_of, ["grid"], as_of)  # killed before finish_run
    con.close()
    named = home / "my configs" / "street.yml"  # a path the shell must be given quoted
    named.parent.mkdir()
    warehouse = {"path": str(home / "warehouse" / "warehouse.duckdb")}
    named.write_text(yaml.safe_dump({**CONFIG, "warehouse": warehouse}), encoding="utf-8")
    monkeypatch.chdir(home)
    monkeypatch.delenv("ISLANDBRIDGE_CONFIG", raising=False)
    for argv, option in ((["--config", str(named)], f" --config '{named}'"), ([], "")):
        assert main(["runs", *argv]) == 0
        out = capsys.readouterr().out
        assert "ib_20261121T160000Z  as of 2026-11-22 00:00:00+08:00  loading  finished -" in out
        again = "run `islandbridge sync{} --as-of {}` again to complete the day"
        assert f"    steps: load not finished: {again.format(option, '2026-11-21')}" in out
        # the day before it was loaded, and no step after its load is done
        assert (
            f"loaded; not yet reconciled, built, exported, published: {again.format(option, '2026-11-20')}"
            in out
        )


def test_output_piped_into_a_reader_that_stops_early_ends_without_a_traceback():
    """`islandbridge runs | head -1`: once the reader has gone, the command stops quietly."""
    import subprocess
    import sys

    script = (
        "import argparse\n"
        "from islandbridge import cli\n"
        "def many(args):\n"
        "    for i in range(200000):\n"
        "        print('run', i)\n"
        "cli.parser = lambda: argparse.Namespace(parse_args=lambda argv: argparse.Namespace(verbose=0, func=many))\n"
        "raise SystemExit(cli.main([]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "run 0\n"
    proc.stdout.close()  # what `head -1` does after its line
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_the_reveal_example_asks_only_for_columns_its_department_may_see():
    """`reveal --help`'s example runs as printed: civil affairs may not see a phone (DEPARTMENTS.md), and
    the example asked for one, which reveal refuses."""
    import shlex

    from islandbridge.delivery.policy import load_policies

    reveal = dict(_subcommands(parser()))[("reveal",)]
    example = reveal.epilog.split("example:\n", 1)[1].splitlines()[0]
    args = reveal.parse_args(shlex.split(example)[2:])
    assert set(args.columns.split(",")) <= set(load_policies()[args.department].vault_fields())


def test_serve_without_credentials_says_how_to_serve_the_demos_street(tmp_path, monkeypatch, capsys):
    """`serve var/demo/street` as printed in its help needs the credentials of the demo's configuration,
    the grid client id among them: the error gives the whole command (docs/operations.md)."""
    for name in ("IB_GRID_CLIENT_ID", "IB_GRID_CLIENT_SECRET", "IB_IOT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "IB_GRID_CLIENT_ID=islandbridge-demo" in err and "$(cat var/demo/secrets/iot_api_key)" in err


def test_an_as_of_that_has_not_come_yet_is_synced_with_a_warning(caplog):
    """`sync --as-of` of today (Asia/Shanghai) means tonight's midnight: the command warns that the day has
    not ended, naming yesterday; a day that has ended passes without a word."""
    import logging

    from islandbridge.cli.common import source_as_of

    def now():
        return dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.UTC)  # 09:30 in Shanghai

    with caplog.at_level(logging.WARNING, logger="islandbridge"):
        assert source_as_of("2026-12-06", now).isoformat() == "2026-12-07T00:00:00+08:00"
        assert not caplog.records
        source_as_of("2026-12-07", now)
    assert (
        "14.5 h from now: the day 2026-12-07 has not ended" in caplog.text
        and "a day that has ended, such as 2026-12-06" in caplog.text
    )


def test_argparse_errors_do_not_repeat_typed_personal_data(capsys):
    """``unrecognized arguments`` and ``invalid choice`` repeat what was typed: an ID number, a phone or a
    name typed by mistake comes back masked."""
    for argv in (
        ["runs", "--as-of", "511403194310287757"],
        ["sync", "--as-of", "2026-11-20", "--bogus", "秦光明"],
        ["13800138000"],
    ):
        with pytest.raises(SystemExit) as ended:
            main(argv)
        assert ended.value.code == 2
        err = capsys.readouterr().err
        assert "error:" in err
        assert not any(p in err for p in ("511403194310287757", "秦光明", "13800138000")), err


@pytest.mark.parametrize(
    ("command", "limit", "least"),
    [(["runs"], "0", 1), (["runs"], "-1", 1), (["review", "list"], "-1", 0), (["runs"], "x", 1)],
)
def test_a_limit_below_its_least_is_refused_as_bad_usage(command, limit, least, capsys):
    """`runs --limit -1` sliced off the oldest run and `--limit 0` printed none (review list's -1 the last
    pair; its 0 prints every pair): a limit below the least is an argparse error, exit 2, before any
    configuration is read."""
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--limit", limit])
    assert exit_.value.code == 2
    assert f"argument --limit: expected a whole number of at least {least}" in capsys.readouterr().err


@pytest.fixture
def with_civil(home):
    """``home``'s configuration with a civil-affairs roster folder beside the two REST sources whose
    secrets are not set, and a quarantine keyring."""
    from islandbridge.privacy.keys import new_keyring_text

    civil = {"kind": "civil_files", "path": str(home / "civil")}
    config = {**CONFIG, "sources": {**CONFIG["sources"], "civil": civil}}
    config["keys"] = {"quarantine": {"file": "quarantine.keys"}}
    (home / "quarantine.keys").write_text(new_keyring_text(), encoding="utf-8")
    (home / "civil").mkdir()
    (home / "islandbridge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return home / "islandbridge.yml"


@pytest.mark.parametrize(
    "argv", [["extract", "--as-of", "2026-11-20", "--source", "civil"], ["quarantine", "replay", "civil"]]
)
def test_a_command_for_one_source_needs_only_that_sources_secrets(with_civil, argv, capsys):
    """`extract --source civil` and `quarantine replay civil` exited 2 with the grid's secret not set:
    a command resolves only the secrets of the sources it touches."""
    assert main([*argv, "--config", str(with_civil)]) == 0
    assert "is not set" not in capsys.readouterr().err


def test_sync_still_names_every_missing_secret_before_it_extracts(with_civil, capsys):
    """`sync` touches every source: it fails at once, naming each secret that is missing, and lands nothing."""
    assert main(["sync", "--as-of", "2026-11-20", "--config", str(with_civil)]) == 2
    err = capsys.readouterr().err
    assert "IB_TEST_UNSET_GRID_SECRET is not set" in err and "IB_TEST_UNSET_KEY is not set" in err
    assert not (with_civil.parent / "landing").exists()


@pytest.mark.parametrize(
    ("argv", "key"),
    [(["reconcile", "--as-of", "2026-11-20"], "keys.person_key"), (["linkage", "train"], "keys.vault")],
)
def test_reconcile_and_linkage_train_need_no_source_secret_but_name_the_key_they_miss(
    home, argv, key, capsys
):
    """They read the warehouse and the vault, never a source: the grid's unset secret does not stop them,
    the key they do use is named."""
    assert main([*argv, "--config", str(home / "islandbridge.yml")]) == 2
    err = capsys.readouterr().err
    assert f"{key} is not configured" in err and "is not set" not in err


def test_reconcile_runs_with_its_keys_while_the_sources_secrets_are_not_set(home, capsys):
    from islandbridge.privacy.keys import new_keyring_text

    config = {**CONFIG, "keys": {"person_key": {"file": "person.key"}, "vault": {"file": "vault.keys"}}}
    (home / "person.key").write_text(new_keyring_text(kid="pk1"), encoding="utf-8")
    (home / "vault.keys").write_text(new_keyring_text(), encoding="utf-8")
    (home / "islandbridge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["reconcile", "--as-of", "2026-11-20", "--config", str(home / "islandbridge.yml")]) == 0
    assert "is not set" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["sync", "extract", "validate", "load", "reconcile"])
def test_a_bad_as_of_is_reported_before_missing_secrets(with_civil, command, capsys):
    """`sync --as-of 2026-11` without the secrets reported the secrets: the mistyped argument comes first."""
    assert main([command, "--as-of", "2026-11", "--config", str(with_civil)]) == 2
    err = capsys.readouterr().err
    assert "expected a date YYYY-MM-DD" in err and "is not set" not in err
