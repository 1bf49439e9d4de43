"""The command-line corpus (`cases_cli`): each argument list through ``islandbridge``'s ``main`` in-process,
and the exported-cell corpus through the department CSV writer."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from islandbridge.cli import main
from islandbridge.delivery.export import neutralise
from islandbridge.delivery.files import write_csv
from tests.hostile.cases_cli import CASES, CELLS, CliCase
from tests.hostile.corpus import Observed, accepted, bounded, check, project_error

pytestmark = pytest.mark.timeout(120)
SECRET = "v1:c2VjcmV0LWtleS1tYXRlcmlhbA"
YAML_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """A project folder with a small warehouse, a key file, a vault and three configurations that are not."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "vault.keys").write_text(SECRET + "\n", encoding="ascii")
    (tmp_path / "warehouse").mkdir()
    with duckdb.connect(str(tmp_path / "warehouse" / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA core; CREATE TABLE core.persons AS SELECT 'pk_1' AS person_key")
    (tmp_path / "private").mkdir()
    config = (
        "street: {code: '511403001'}\nlanding: {url: landing}\n"
        "warehouse: {path: warehouse/warehouse.duckdb}\nvault: {path: private/vault.duckdb}\n"
        "keys: {vault: {file: secrets/vault.keys}}\n"
    )
    (tmp_path / "islandbridge.yml").write_text(config, encoding="utf-8")
    (tmp_path / "python.yml").write_text("street: !!python/object/apply:os.system ['touch pwned']\n")
    (tmp_path / "bomb.yml").write_text(YAML_BOMB)
    escape = config.replace("warehouse/warehouse.duckdb", "../../../../etc/passwd")
    (tmp_path / "escape.yml").write_text(escape, encoding="utf-8")
    monkeypatch.setenv("IB_SECRET_PROBE", SECRET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def observe(case: CliCase, home: Path, capsys) -> Observed:
    argv = [
        a.replace("{config}", str(home / "islandbridge.yml")).replace("{home}", str(home)) for a in case.argv
    ]

    def run() -> int:
        try:
            return main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            return int(exc.code or 0)

    status, exc = bounded(run, seconds=60)
    if exc is not None:
        return project_error(exc)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err, "key material or a secret reached the terminal"
    assert "Traceback" not in out.err
    if status == 0:
        return Observed("accepted", out.out, status=0)
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert lines and lines[-1 if status == 2 and lines[0].startswith("usage:") else 0].startswith(
        "islandbridge: error:"
    ), f"not the command's error line: {out.err!r}"
    # One line, or (configuration) one line and the list of every problem found, each on its own line.
    assert (
        len(lines) == 1
        or "configuration problem" in lines[0]
        or "is not valid YAML" in lines[0]  # the YAML parser's own position lines follow
        or lines[0].startswith("usage:")
    ), out.err
    return Observed(
        "error",
        lines[0] if not lines[0].startswith("usage:") else lines[-1],
        status=status,
        extra={"class": Exception},
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_command_line(case: CliCase, home: Path, capsys):
    started = time.monotonic()
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file() and "landing" not in p.parts}
    observed = observe(case, home, capsys)
    assert not (home / "pwned").exists()
    changed = [p for p, data in before.items() if not p.exists() or p.read_bytes() != data]
    assert not [p for p in changed if "secrets" in p.parts or p.suffix in (".keys", ".yml")], changed
    check("cli", case.id, case.expect, observed, started)


@pytest.mark.parametrize(("kind", "text", "cell"), CELLS, ids=[c[0] for c in CELLS])
def test_exported_cell(kind: str, text: str, cell: str, tmp_path: Path):
    """A mart's text as the department's CSV holds it: formulas neutralised, long digit runs kept."""
    started = time.monotonic()
    path = tmp_path / "report.csv"
    write_csv(pa.table({"value": [neutralise(text)]}), path)
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["value"], [cell]]
    check("export", kind, accepted(), Observed("accepted"), started)
