"""The kept normalised rows of `identity.reuse`: what invalidates them, when the file is written again, a damaged
file, where it spills."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from islandbridge.identity import reuse
from islandbridge.identity.reuse import Reuse
from islandbridge.privacy.vault import Vault
from tests.privacy.helpers import vault_ring

AS_OF = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
STREAM = SimpleNamespace(source="registry", spec=SimpleNamespace(stream="t_jm"))


@pytest.fixture
def vault(tmp_path):
    with Vault.open(tmp_path / "vault.duckdb", vault_ring("v1")) as v:
        yield v


def test_an_upgraded_normalising_library_invalidates_the_kept_rows(monkeypatch):
    """A new pypinyin may spell a name differently: rows kept under the old one must not be reused."""
    before, real = reuse.code_version(), reuse.metadata.version
    monkeypatch.setattr(reuse.metadata, "version", lambda name: "99.0" if name == "pypinyin" else real(name))
    assert reuse.code_version() != before


def test_a_kept_file_cut_short_means_normalising_again_not_a_crash(vault, caplog):
    kept = Reuse(vault, AS_OF)
    kept.directory.mkdir(parents=True, exist_ok=True)
    kid = vault.keyring.active.kid.encode()
    kept._path(STREAM).write_bytes(bytes([len(kid)]) + kid + b"\x00" * 5)  # the nonce cut short
    with caplog.at_level(logging.WARNING):
        assert kept._load(STREAM, "context") is None
    assert "normalising them all again" in caplog.text


def test_the_connection_spills_only_into_an_owner_only_folder_beside_the_kept_rows(vault):
    """It compares decrypted kept rows: a spill must not land in the system's temporary folder."""
    kept = Reuse(vault, AS_OF)
    (folder,) = kept._con.execute("SELECT current_setting('temp_directory')").fetchone()
    assert Path(folder).is_relative_to(kept.directory / "spill")
    assert (kept.directory / "spill").stat().st_mode & 0o777 == 0o700
    assert kept.directory.stat().st_mode & 0o777 == 0o700


def _rows(keys, run="ib_1", changed=()):
    """Raw rows of ``keys`` as landed in ``run``; the records in ``changed`` hold another name."""
    n, names = len(keys), ["y" if k in changed else "x" for k in keys]
    return pa.table(
        {"record_key": keys, "first_seen_run": ["ib_1"] * n, "last_seen_run": [run] * n, "xm": names}
    )


def _normaliser(calls):
    """Normalises ``data``: record ``b`` (a legacy number's century) is as-of bound, the others not."""

    def normalise(data):
        calls.append(sorted(data["record_key"].to_pylist()))
        keys = data["record_key"].to_pylist()
        given = {
            "record_key": keys,
            "first_seen_run": data["first_seen_run"].to_pylist(),
            "last_seen_run": data["last_seen_run"].to_pylist(),
            "name_key": data["xm"].to_pylist(),
            "as_of_bound": [k == "b" for k in keys],
        }
        return pa.table(
            [given.get(f.name, pa.nulls(len(keys), f.type)) for f in reuse.UNPLACED], schema=reuse.UNPLACED
        )

    return normalise


def test_a_day_that_only_normalises_as_of_bound_rows_again_keeps_the_file_as_it_is(vault, monkeypatch):
    """A day without change normalises the as-of bound rows again (they are never reused) and nothing else:
    the kept file is not sealed and written again, and the next run still reuses the others from it. A
    change (the as-of bound record's source, a record gone) writes it again."""
    monkeypatch.setattr(
        vault,
        "record_digests",
        lambda source, stream, wanted: pa.array(
            [b"d" + k.encode() for k in wanted["record_key"].to_pylist()], pa.binary()
        ),
    )
    stream = SimpleNamespace(source="registry", spec=SimpleNamespace(stream="t_jm", min_age=None))
    calls = []
    Reuse(vault, AS_OF)(stream, _rows(["a", "b", "c"]), _normaliser(calls), {})
    path = Reuse(vault, AS_OF)._path(stream)
    written = path.read_bytes()

    later = Reuse(vault, AS_OF + dt.timedelta(days=1))
    again = later(stream, _rows(["a", "b", "c"], run="ib_2"), _normaliser(calls), {})
    assert calls[-1] == ["b"] and later.counts == {"reused": 2, "normalised": 1}
    assert path.read_bytes() == written  # not rewritten
    assert again.sort_by("record_key")["name_key"].to_pylist() == ["x", "x", "x"]
    assert sorted(again["last_seen_run"].to_pylist()) == ["ib_2"] * 3

    third = Reuse(vault, AS_OF + dt.timedelta(days=2))
    third(stream, _rows(["a", "b", "c"], run="ib_3"), _normaliser(calls), {})
    assert calls[-1] == ["b"] and third.counts == {"reused": 2, "normalised": 1}
    assert path.read_bytes() == written

    edited = Reuse(vault, AS_OF + dt.timedelta(days=3))
    rows = edited(stream, _rows(["a", "b", "c"], run="ib_4", changed="b"), _normaliser(calls), {})
    assert calls[-1] == ["b"] and rows.sort_by("record_key")["name_key"].to_pylist() == ["x", "y", "x"]
    assert path.read_bytes() != written
    written = path.read_bytes()

    gone = Reuse(vault, AS_OF + dt.timedelta(days=4))
    gone(stream, _rows(["a", "b"], run="ib_5", changed="b"), _normaliser(calls), {})
    assert calls[-1] == ["b"] and gone.counts == {"reused": 1, "normalised": 1}
    assert path.read_bytes() != written
