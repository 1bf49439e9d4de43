"""Through extract, gate and load (#15 item 1): a correction whose rows are quarantined leaves the month's
landed version, and its identifiers in the vault, as they were; the file's outcome is in meta.source_files."""

from __future__ import annotations

from pathlib import Path

from islandbridge import pipeline
from islandbridge.config import parse_as_of, parse_settings
from islandbridge.landing import raw
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.keys import new_keyring_text
from tests.connectors.hostile import dibao_row, dibao_xlsx, roster_name


def _settings(tmp_path: Path, folder: Path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("quarantine", "vault"):
        (secrets / f"{name}.keys").write_text(new_keyring_text() + "\n")
    raw_config = {
        "street": {"code": "511403001"},
        "landing": {"url": "landing"},
        "warehouse": {"path": "warehouse/warehouse.duckdb"},
        "keys": {name: {"file": f"secrets/{name}.keys"} for name in ("quarantine", "vault")},
        "sources": {"civil": {"kind": "civil_files", "path": str(folder)}},
    }
    return parse_settings(raw_config, base_dir=tmp_path, environ={})


def _run(settings, day: str) -> str:
    as_of = parse_as_of(day)
    pipeline.extract(settings, "civil", as_of)
    pipeline.validate(settings, as_of, ["civil"])
    pipeline.load(settings, as_of, ["civil"])
    return raw.run_id_for(as_of)


def test_a_quarantined_correction_erases_nothing_from_the_vault(tmp_path: Path):
    folder = tmp_path / "civil"
    folder.mkdir()
    (folder / roster_name()).write_bytes(dibao_xlsx([dibao_row(i) for i in (1, 2, 3)]))
    settings = _settings(tmp_path, folder)
    first = _run(settings, "2026-11-20")
    bad = roster_name(correction="_更正2")
    (folder / bad).write_bytes(dibao_xlsx([["", *dibao_row(i)[1:]] for i in (1, 2)]))
    second = _run(settings, "2026-11-21")

    keys = [(f"dibao:202611:{i}", first) for i in (1, 2, 3)]
    with open_vault(settings) as vault:
        opened = vault.open_records("civil", "dibao", keys)
    assert [row["户主姓名"] for row in opened] == ["测试1", "测试2", "测试3"]
    con = raw.connect(str(settings.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM meta.deletions").fetchone()[0] == 0
        files = con.execute(
            "SELECT run_id, file, outcome, rows FROM meta.source_files ORDER BY run_id, file"
        ).fetchall()
    finally:
        con.close()
    assert files == [
        (first, roster_name(), "landed", 3),
        (second, roster_name(), "kept", 0),
        (second, bad, "refused", 2),
    ]
