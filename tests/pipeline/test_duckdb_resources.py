"""Every DuckDB connection runs under the configured memory limit and spills to the configured folder."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import duckdb
import pytest

import islandbridge
from islandbridge import storage
from islandbridge.config import DuckDBResources, machine_memory_bytes, parse_settings
from islandbridge.connectors.base import Stream
from islandbridge.errors import ConfigError
from islandbridge.landing import raw
from islandbridge.landing.zone import LandingWriter

ENV = {"GRID_SECRET": "x"}
BASE = {
    "street": {"code": "511403001"},
    "landing": {"url": "landing"},
    "warehouse": {"path": "wh/warehouse.duckdb"},
    "sources": {"grid": {"kind": "grid_rest", "base_url": "http://127.0.0.1:1", "client_id": "c"}},
}


def _settings(tmp_path, **duckdb):
    return parse_settings({**BASE, "duckdb": duckdb}, base_dir=tmp_path, environ=ENV)


def _setting(con, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0]


@pytest.fixture
def loose_umask():
    """The umask most shells have (0o022): what the code must not rely on."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_configured_limit_and_spill_folder_reach_the_warehouse_connection(tmp_path):
    settings = _settings(tmp_path, memory_limit="300MiB", temp_directory="spill")
    settings.warehouse_path.parent.mkdir(parents=True)
    con = raw.connect(str(settings.warehouse_path), resources=settings.duckdb)
    try:
        assert _setting(con, "memory_limit") == "300.0 MiB"
        assert _setting(con, "temp_directory").startswith(str(tmp_path / "spill" / "ib-"))
    finally:
        con.close()


def test_a_spill_folder_the_product_creates_is_owner_only(tmp_path, loose_umask):
    """Spills of the linkage model's connection hold names in pinyin: nobody else may read the folder."""
    resources = DuckDBResources("256MiB", tmp_path / "spill")
    con = storage.connect(resources=resources)
    con.close()
    assert (tmp_path / "spill").stat().st_mode & 0o777 == 0o700


def test_a_second_connection_to_an_open_database_keeps_its_spill_folder(tmp_path):
    resources = DuckDBResources("200MiB", tmp_path / "spill")
    path = str(tmp_path / "w.duckdb")
    first = storage.connect(path, resources=resources)
    first.execute("SET threads = 1; SET memory_limit = '20MB'; SET preserve_insertion_order = false")
    spill = _setting(first, "temp_directory")
    # a sort bigger than the limit: DuckDB spills into the folder, which it then cannot switch
    rows = first.sql("SELECT range AS a, random() AS b FROM range(3000000) ORDER BY b").to_arrow_reader()
    second = storage.connect(path, resources=resources)
    try:
        assert _setting(second, "temp_directory") == spill
        assert sum(b.num_rows for b in rows) == 3_000_000
    finally:
        second.close()
        first.close()


def test_without_configuration_a_connection_gets_a_share_of_the_machine_memory(tmp_path):
    settings = parse_settings(BASE, base_dir=tmp_path, environ=ENV)
    assert settings.duckdb.temp_directory == tmp_path / "wh" / "duckdb-tmp"
    with storage.connect() as con:  # no settings at hand: the same machine-derived default
        mib = float(_setting(con, "memory_limit").split()[0].replace("GiB", ""))
        unit = _setting(con, "memory_limit").split()[1]
    limit_mib = mib * (1024 if unit == "GiB" else 1)
    assert 256 <= limit_mib <= 2048
    assert limit_mib <= max(256, machine_memory_bytes() / 2**20 * 0.25) + 1


def test_a_share_of_the_machine_memory_can_be_configured(tmp_path):
    settings = _settings(tmp_path, memory_limit="10%")
    assert settings.duckdb.memory_limit == f"{int(machine_memory_bytes() * 0.10 // 2**20)}MiB"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"memory_limit": "lots"}, "duckdb.memory_limit"),
        ({"memory_limit": "0%"}, "duckdb.memory_limit"),
        ({"memory_limit": "150%"}, "duckdb.memory_limit"),
        ({"memory_limit": "1MB"}, "duckdb.memory_limit"),
        ({"memory_limit": 2048}, "duckdb.memory_limit"),
        ({"temp_directory": ""}, "duckdb.temp_directory"),
        ({"memory_limt": "1GB"}, "did you mean `memory_limit`"),
        ("2GB", "duckdb: a mapping"),
    ],
)
def test_a_bad_duckdb_section_is_a_config_error(tmp_path, section, problem):
    with pytest.raises(ConfigError, match=problem.replace("`", ".")):
        parse_settings({**BASE, "duckdb": section}, base_dir=tmp_path, environ=ENV)


def test_the_landing_dedupe_spills_under_the_configured_limit_instead_of_failing(tmp_path):
    """A dedupe bigger than its memory limit (the old fixed 256MB made the 300k run fail) completes."""
    events = Stream("events", ("device_id", "ts"), ("device_id", "ts", "payload"), dedupe=True)
    writer = LandingWriter.open(
        tmp_path.joinpath("landing").as_uri(),
        "run1",
        "iot",
        [events],
        part_rows=100_000,
        resources=DuckDBResources("64MiB", tmp_path / "spill"),
    )
    n = 300_000
    payload = "x" * 200
    writer.read("events", n + 1000)
    writer.write("events", ({"device_id": str(i % 97), "ts": str(i), "payload": payload} for i in range(n)))
    writer.write(
        "events", ({"device_id": str(i % 97), "ts": str(i), "payload": payload} for i in range(1000))
    )
    manifest = writer.close({})
    counts = manifest["streams"]["events"]
    assert (counts["landed"], counts["duplicates"]) == (n, 1000)
    assert not any((tmp_path / "spill").iterdir())  # DuckDB removed its spill files on close


def test_an_analyst_sandbox_runs_under_the_configured_limit_and_cannot_raise_it(tmp_path):
    path = tmp_path / "w.duckdb"
    storage.connect(str(path)).close()
    con = storage.connect_sandboxed(str(path), resources=DuckDBResources("200MiB", tmp_path / "spill"))
    try:
        assert _setting(con, "memory_limit") == "200.0 MiB"
        assert _setting(con, "temp_directory").startswith(str(tmp_path / "spill" / "ib-"))
        with pytest.raises(duckdb.InvalidInputException):
            con.execute("SET memory_limit = '10GB'")
    finally:
        con.close()


def test_the_product_opens_duckdb_only_through_the_storage_helpers():
    """A bare ``duckdb.connect`` would run without the configured memory limit and spill folder."""
    root = Path(islandbridge.__file__).parent.parent
    product = [
        p
        for p in root.rglob("*.py")
        if not {"tests", "var", "build"} & set(p.relative_to(root).parts)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    bare = [
        f"{path.relative_to(root)}:{node.lineno}"
        for path in product
        if path != root / "islandbridge" / "storage.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "connect"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "duckdb"
    ]
    assert bare == []
