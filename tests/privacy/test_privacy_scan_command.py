"""``islandbridge privacy scan`` as documented: a living street's root gives needles of every day, the
export columns a policy fills from the vault are allowed, ciphertext is not decoded as GB18030 text."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

import pytest

from islandbridge.cli import main
from islandbridge.devtools.privacy_scan import command

FIRST = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def living(tmp_path_factory) -> Path:
    from islandbridge.devtools.simulator import simulate

    out = tmp_path_factory.mktemp("living") / "street"
    simulate(out, residents=300, seed=11, days=3, as_of=FIRST)
    return out


def _persons(truth: Path) -> dict[str, dict]:
    with (truth / "persons.csv").open(encoding="utf-8", newline="") as f:
        return {r["id_number"]: r for r in csv.DictReader(f)}


def test_a_living_street_root_gives_the_needles_of_every_day(living, tmp_path, capsys):
    days = sorted(p.name for p in (living / "days").iterdir())
    first, last = (_persons(living / "days" / d / "truth") for d in (days[0], days[-1]))
    newcomer = next(iter(last.keys() - first.keys()), None)  # born or moved in after the first day
    person = last[newcomer] if newcomer else next(iter(last.values()))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.log").write_text(f"ERROR row {person['id_number']}\n", encoding="utf-8")
    assert command(living, tmp_path / "run", show=5) == 1
    out = capsys.readouterr().out
    assert "run.log :: text :: line 1: id_number/id18" in out and person["id_number"] not in out
    assert main(["privacy", "scan", "--street", str(living), "--root", str(tmp_path / "run")]) == 1


def test_a_folder_that_is_no_street_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "root").mkdir()
    code = main(["privacy", "scan", "--street", str(tmp_path), "--root", str(tmp_path / "root")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and "holds no simulated street" in err


def _demo_like(root: Path, person: dict) -> None:
    """A run's folder: an export with a policy column holding a name and an ID, a sealed file whose
    random bytes hold the name in GB18030, and a clean log."""
    day = root / "exports" / "civil_affairs" / FIRST.isoformat()
    day.mkdir(parents=True)
    with (day / "subsidy_after_exit.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["ref", "name", "id_number"], ["ca_1", person["name"], person["id_number"]]])
    noise = random.Random(3).randbytes(4096)
    sealed = root / "private" / "normalised"
    sealed.mkdir(parents=True)
    (sealed / "iot__cardholders.sealed").write_bytes(
        noise + b"\0" + person["name"].encode("gb18030") + b"\0" + noise
    )
    (root / "logs").mkdir()
    (root / "logs" / "run.log").write_text("INFO export civil_affairs: 1 row\n", encoding="utf-8")


def test_a_fresh_run_passes_and_a_name_in_a_log_fails(street_dir, tmp_path, capsys):
    person = next(iter(_persons(street_dir / "truth").values()))
    _demo_like(tmp_path, person)
    argv = ["privacy", "scan", "--street", str(street_dir), "--root", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "allowed: 2 hits in export columns their policy allows" in out
    assert main([*argv, "--no-policies"]) == 1  # the policy columns are what passed
    capsys.readouterr()
    (tmp_path / "logs" / "run.log").write_text(f"ERROR person {person['name']}\n", encoding="utf-8")
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "logs/run.log :: text :: line 1: name/name" in out and person["name"] not in out


def test_the_vaults_ciphertext_is_not_read_as_gb18030_but_a_plain_name_in_it_is_found(tmp_path):
    import duckdb

    from islandbridge.devtools.leakscan import Needles, scan_tree

    name = "尹一鸣"
    noise = random.Random(5).randbytes(64)
    for file, blob, found in (
        ("vault.duckdb", noise + b"\0" + name.encode("gb18030") + b"\0" + noise, 0),
        ("vault2.duckdb", noise + b"\0" + name.encode("utf-8") + b"\0" + noise, 1),
        ("other.duckdb", noise + b"\0" + name.encode("gb18030") + b"\0" + noise, 1),  # not the vault
    ):
        with duckdb.connect(str(tmp_path / file)) as con:
            con.execute("CREATE TABLE sealed (v BLOB)")
            con.execute("INSERT INTO sealed VALUES (?)", [blob])
        result = scan_tree(tmp_path / file, Needles.from_values(names=[name]))
        assert len(result.hits) == found, (file, [str(h) for h in result.hits])
