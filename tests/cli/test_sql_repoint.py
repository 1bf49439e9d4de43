"""`islandbridge sql` on a copied warehouse re-points its views over Parquet with a write connection that
does nothing else, and never ends in a traceback when another process (a sync) holds the warehouse."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from islandbridge import pipeline
from islandbridge.cli import main
from islandbridge.landing import raw, raw_parts
from islandbridge.pipeline import load_settings
from islandbridge.warehouse.device_events import EventFilesError
from tests.helpers import held
from tests.warehouse.test_raw_parts_paths import _two_runs

CONFIG = (
    "street: {code: '511403001'}\nlanding: {url: landing}\n"
    "warehouse: {path: warehouse/warehouse.duckdb}\nvault: {path: private/vault.duckdb}\n"
    "keys: {vault: {file: secrets/vault.keys}}\n"
)


def _copied(tmp_path):
    """A warehouse with raw parts, built under ``run/`` and copied to ``copy/`` (its views name run/'s)."""
    original, copy = tmp_path / "run", tmp_path / "copy"
    w, _ = _two_runs(original / "warehouse", "warehouse.duckdb")
    w.con.execute("DROP TABLE meta.deletions")  # what only a full write connection would create again
    w.close()
    shutil.copytree(original, copy)
    (copy / "secrets").mkdir()
    (copy / "secrets" / "vault.keys").write_text("v1:c2VjcmV0LWtleS1tYXRlcmlhbA\n", encoding="ascii")
    (copy / "islandbridge.yml").write_text(CONFIG, encoding="utf-8")
    return copy


def _views(path) -> str:
    with raw.connect(str(path), read_only=True) as con:
        return con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'iot__events'").fetchall()[0][0]


def test_sql_repoints_a_copy_without_creating_or_upgrading_tables(tmp_path, capsys):
    copy = _copied(tmp_path)
    assert (
        main(["sql", "--config", str(copy / "islandbridge.yml"), "SELECT count(*) AS n FROM raw.iot__events"])
        == 0
    )
    assert re.search(r"│\s*2\s*│", capsys.readouterr().out)
    assert str(copy / "warehouse" / "raw") in _views(copy / "warehouse" / "warehouse.duckdb")
    with raw.connect(str(copy / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        tables = {
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'meta'"
            ).fetchall()
        }
    assert "deletions" not in tables


@pytest.mark.parametrize("copied", [True, False])
def test_sql_while_a_sync_holds_the_warehouse_says_so_without_a_traceback(tmp_path, capsys, copied):
    home = _copied(tmp_path)
    if not copied:  # views that need no re-pointing: the read-only open alone, as before
        main(["sql", "--config", str(home / "islandbridge.yml"), "SELECT 1"])
        capsys.readouterr()
    with held(home / "warehouse" / "warehouse.duckdb"):
        assert main(["sql", "--config", str(home / "islandbridge.yml"), "SELECT 1"]) == 3
    err = capsys.readouterr().err
    assert "not re-pointed: another process holds the warehouse (a sync running?)" in err
    assert "islandbridge: error: the warehouse is in use by a running step" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv", [["quarantine", "list"], ["review", "list"], ["runs"], ["sql", "SELECT 1"]], ids=" ".join
)
def test_a_read_while_a_sync_holds_the_warehouse_is_busy_in_one_line(tmp_path, capfd, argv):
    """Any command reading the warehouse while another process writes it (DuckDB's file lock) exits 3 with
    one line, as reveal and publish do: run it again when the sync has finished."""
    home = _copied(tmp_path)
    with held(home / "warehouse" / "warehouse.duckdb"):
        status = main([*argv, "--config", str(home / "islandbridge.yml")])
    err = capfd.readouterr().err
    assert status == 3, err
    assert "the warehouse is in use by a running step" in err and "Traceback" not in err


def test_sql_on_a_copy_with_a_lost_part_answers_and_warns_naming_it(tmp_path, capsys, caplog):
    """The view leaves the lost part out; the warning names it (the load would stop on it)."""
    home = _copied(tmp_path)
    (gone, *_) = sorted((home / "warehouse" / "raw").rglob("*.parquet"))
    gone.unlink()
    config = str(home / "islandbridge.yml")
    assert main(["sql", "--config", config, "SELECT count(*) AS events FROM raw.iot__events"]) == 0
    out, warned = capsys.readouterr().out, caplog.text
    assert (
        gone.relative_to(home / "warehouse" / "raw").as_posix() in warned and "view leaves it out" in warned
    )
    assert "1" in out.split("events", 1)[1]
    with raw.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        assert raw_parts.views_elsewhere(con, home / "warehouse" / "raw") == []  # the next sql only reads


def test_only_a_conflicting_lock_is_busy():
    """DuckDB's other lock failures (a file system without locks) and any error naming a folder with "lock"
    in it are not a busy warehouse: they are not said to clear by running again."""
    import duckdb

    from islandbridge.storage import lock_holder

    conflict = 'Could not set lock on file "/w/warehouse.duckdb": Conflicting lock is held in /usr/bin/python (PID 42)'
    assert lock_holder(duckdb.IOException(conflict)) == "PID 42"
    unsupported = (
        'Could not set lock on file "/w/warehouse.duckdb": File locks are not supported for this file system'
    )
    assert lock_holder(duckdb.IOException(unsupported)) is None
    named = 'The file "/srv/clockroom/warehouse.duckdb" exists, but it is not a valid DuckDB database file!'
    assert lock_holder(duckdb.IOException(named)) is None


def test_sql_on_a_broken_warehouse_in_a_folder_named_with_lock_says_the_open_error_first(tmp_path, capsys):
    home = tmp_path / "clockroom"
    (home / "warehouse").mkdir(parents=True)
    (home / "warehouse" / "warehouse.duckdb").write_bytes(b"not a database" * 512)
    (home / "secrets").mkdir()
    (home / "secrets" / "vault.keys").write_text("v1:c2VjcmV0LWtleS1tYXRlcmlhbA\n", encoding="ascii")
    (home / "islandbridge.yml").write_text(CONFIG, encoding="utf-8")
    assert main(["sql", "--config", str(home / "islandbridge.yml"), "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("islandbridge: error: cannot open the warehouse") and "re-pointed" not in err


@pytest.mark.parametrize("lost", [0, -1])
def test_sql_answers_on_a_copy_that_lost_a_device_event_file(tmp_path, capsys, caplog, lost):
    """A copy whose events/ lost a day file (the first or the last listed): `sql` re-points the view over the
    files that are there, names the lost one in a warning and answers (before: exit 4 before any query);
    publish's re-pointing still stops on it, and once the file is back the view reads it again."""
    from tests.warehouse.test_core import T1, build, event
    from tests.warehouse.test_core_fixtures import HOUR_MS, TinyWarehouse, ms

    home = tmp_path / "run" / "warehouse"
    home.mkdir(parents=True)
    w = TinyWarehouse(home / "warehouse.duckdb")
    r1 = w.run(T1)
    w.add("iot__events", r1, [event(f"a{n}", ms(T1) - n * 24 * HOUR_MS) for n in range(1, 4)])
    build(w, T1, home / "events")
    w.close()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    (copy / "secrets").mkdir()
    (copy / "secrets" / "vault.keys").write_text("v1:c2VjcmV0LWtleS1tYXRlcmlhbA\n", encoding="ascii")
    (copy / "islandbridge.yml").write_text(CONFIG, encoding="utf-8")
    day_files = sorted((copy / "warehouse" / "events").rglob("events-*.parquet"))
    assert len(day_files) == 3
    aside = day_files[lost].rename(tmp_path / "aside.parquet")
    config = str(copy / "islandbridge.yml")
    capsys.readouterr()
    assert main(["sql", "--config", config, "SELECT count(*) AS kept FROM core.device_events"]) == 0
    assert re.search(r"│\s*2\s*│", capsys.readouterr().out)
    assert "1 device-event file" in caplog.text and "missing" in caplog.text
    with raw.connect(str(copy / "warehouse" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.device_events").fetchall() == [(2,)]
    settings = load_settings(copy / "islandbridge.yml", os.environ, with_sources=False)
    with pytest.raises(EventFilesError, match="1 device-event file"):
        pipeline.repoint(settings)  # what publish runs first: a snapshot never misses the lost day
    aside.rename(day_files[lost])
    assert main(["sql", "--config", config, "SELECT count(*) AS kept FROM core.device_events"]) == 0
    assert re.search(r"│\s*3\s*│", capsys.readouterr().out)
