"""Kept pair scores (`identity.scoring`): a day scores only the pairs of its changed records, and gets
what scoring every pair gives; the model's name frequencies are kept with it, sealed. Names synthetic."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pytest

from islandbridge.identity.probabilistic import model_settings, predict_pairs
from islandbridge.identity.scoring import Scoring, model_hash, saved_blocking
from islandbridge.privacy.keys import VAULT, KeyRing, new_keyring_text
from islandbridge.privacy.sealed_files import sealed_kid
from islandbridge.privacy.vault import Vault
from tests.identity.strategies import record, table
from tests.identity.test_probabilistic import _fixed_model
from tests.privacy.helpers import vault_ring

NAMES = (
    ("张伟", "zhangwei", "zhang", "wei"),
    ("李娜", "lina", "li", "na"),
    ("王芳", "wangfang", "wang", "fang"),
)


@pytest.fixture
def vault(tmp_path):
    with Vault.open(tmp_path / "vault.duckdb", vault_ring("v1")) as v:
        yield v


def _street(n: int = 36) -> list[dict]:
    """Three names across six flats, two phones per flat: namesakes, households and shared phones."""
    rows = []
    for i in range(n):
        name, pinyin, surname, given = NAMES[i % 3]
        flat = f"XQ001|{i % 6}|1|101"
        rows.append(
            record(
                i,
                name_key=name,
                pinyin_key=pinyin,
                surname_pinyin=surname,
                given_pinyin=given,
                house_key=flat,
                phones=[f"+86138000000{i % 6:02d}"],
                birth=f"19{50 + i % 4}-0{1 + i % 2}-01",
                sex="MF"[i % 2],
                system="registry" if i % 2 else "grid",
            )
        )
    return rows


def _renumbered(rows: list[dict]) -> pa.Table:
    """``rows`` as a record table, uids 0..n-1 in the given order (a day's table numbers its records anew)."""
    return table([{**row, "uid": uid} for uid, row in enumerate(rows)])


def _next_day(rows: list[dict]) -> list[dict]:
    """A record leaves, one moves flat, one gains a phone, one arrives; the order changes."""
    rows = [dict(row) for row in rows[1:]]
    rows[4]["house_key"], rows[4]["room_key"] = rows[5]["house_key"], rows[5]["room_key"]
    rows[7]["phones"] = [*rows[7]["phones"], "+8613800000099"]
    newcomer = dict(rows[2], record_key="r:new", system="iot")
    return [*reversed(rows), newcomer]


def test_a_day_scores_only_its_changed_records_pairs_and_gets_what_scoring_all_gives(vault):
    model = _fixed_model()
    scoring = Scoring(vault)
    scoring(_renumbered(_street()), model)
    frequencies, _ = scoring.frequencies(_renumbered(_street()), model)
    day2 = _renumbered(_next_day(_street()))

    again = Scoring(vault)
    pairs = again(day2, model)

    assert pairs.equals(predict_pairs(day2, model, frequencies=frequencies))
    assert again.counts["changed"] == 3  # the move, the phone, the newcomer
    assert 0 < again.counts["scored"] < again.counts["kept"]
    full = Scoring(vault, full=True)
    assert full(day2, model).equals(pairs) and full.counts["kept"] == 0


def test_a_first_run_scores_as_splink_counting_the_names_itself(vault):
    """The frequencies are counted on the first records scored: that run's scores are Splink's own."""
    model, records = _fixed_model(), _renumbered(_next_day(_street()))
    assert Scoring(vault)(records, model).equals(predict_pairs(records, model))


def test_a_day_without_change_scores_nothing(vault):
    model, records = _fixed_model(), _renumbered(_street())
    first = Scoring(vault)(records, model)
    again = Scoring(vault)
    assert again(records, model).equals(first)
    assert again.counts == {"kept": first.num_rows, "scored": 0, "changed": 0}


def test_scores_kept_under_another_model_are_not_used(vault):
    model, records = _fixed_model(), _renumbered(_street())
    Scoring(vault)(records, model)
    retrained = {**model, "probability_two_random_records_match": 0.002}
    again = Scoring(vault)
    again(records, retrained)
    assert again.counts["kept"] == 0 and again.counts["changed"] == records.num_rows


def test_the_name_frequencies_are_frozen_with_the_model_and_kept_sealed(vault):
    """Counted on the first records the model scores, not on a later day's; no name readable on disk."""
    model = _fixed_model()
    first, _ = Scoring(vault).frequencies(_renumbered(_street()), model)
    later, _ = Scoring(vault).frequencies(_renumbered(_street()[:7]), model)
    assert later["name_key"].equals(first["name_key"])
    path = vault.path.parent / "linkage" / f"frequencies-{model_hash(model)}.sealed"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    blob = path.read_bytes()
    assert not any(text.encode() in blob for name in NAMES for text in name[:2])


def test_the_neighbourhood_reads_the_blocking_the_model_saves():
    """A model saved with other blocking rules is scored whole; the rules as coded are recognised."""
    assert model_settings()["blocking_rules_to_generate_predictions"] == saved_blocking()


def test_a_rotated_vault_key_reseals_the_frequencies_and_keeps_their_scores(tmp_path):
    """After `keys rotate`, a run re-seals the frequencies under the new key with their stamp: the old key
    can be retired without losing them, and the kept scores stay valid."""
    first = new_keyring_text(None, kid="v1")
    model, records = _fixed_model(), _renumbered(_street())
    before = Scoring(SimpleNamespace(keyring=KeyRing.parse(first, VAULT), path=tmp_path / "vault.duckdb"))
    before(records, model)
    rotated = KeyRing.parse(new_keyring_text(first, kid="v2"), VAULT)
    after = Scoring(SimpleNamespace(keyring=rotated, path=tmp_path / "vault.duckdb"))
    after(records, model)
    path = tmp_path / "linkage" / f"frequencies-{model_hash(model)}.sealed"
    assert sealed_kid(path) == "v2"
    assert after.counts == {"kept": after.counts["kept"], "scored": 0, "changed": 0}
