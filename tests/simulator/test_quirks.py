"""Quirk rates as parameters: the defaults leave the street as it was, and each knob changes what it claims.

The knob tests build the 300-resident model and run one writer (fast); the default-street tests read the
session's street.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from islandbridge.devtools.simulator import PROFILES, Quirks, generate, names
from islandbridge.devtools.simulator import grid as gridw
from islandbridge.devtools.simulator import iot as iotw
from islandbridge.devtools.simulator.common import sub_rng
from islandbridge.devtools.simulator.formats import ADDRESS_STYLES, masked_id
from islandbridge.devtools.simulator.generator import build_street
from islandbridge.devtools.simulator.quirks import profile
from tests.conftest import AS_OF, SEED

#: sha256 over (relative path, bytes) of every file of generate(out, residents=300, seed=7). A change
#: of the default street is a change of every test's fixture: if it is meant, say so and update this.
DEFAULT_STREET_SHA256 = "74f41d1c3b6a77afd2bd8634970ea935066f2550edfa7fb61efa4c206b15a94f"


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def street(**quirks):
    return build_street(SEED, 300, AS_OF, "511403001", Quirks(**quirks))


def events(**quirks):
    s = street(**quirks)
    return s, gridw._events(sub_rng(SEED, "grid"), s)


def residents(**quirks):
    s = street(**quirks)
    people = [p for p in s.persons if p.role == "resident" and p.in_grid]
    return s, people, gridw._residents(sub_rng(SEED, "grid"), s, people)


def flat_addresses(house) -> set[str]:
    return {gridw.address(house, style, fw) for style in ADDRESS_STYLES for fw in (False, True)}


# -- the default street is the street as it always was -------------------------------------------------
def test_the_default_street_is_pinned_byte_for_byte(street_dir):
    assert tree_hash(street_dir) == DEFAULT_STREET_SHA256


def test_default_quirks_give_the_same_bytes_as_no_quirks(tmp_path, street_dir):
    generate(tmp_path / "q", residents=300, seed=SEED, as_of=AS_OF, quirks=Quirks())
    assert tree_hash(tmp_path / "q") == tree_hash(street_dir)
    assert "quirks" not in json.loads((street_dir / "truth" / "meta.json").read_text(encoding="utf-8"))


# -- incident reporters --------------------------------------------------------------------------------
def _in_flat(reporters) -> int:
    return sum(e["address"] in flat_addresses(p.house) for e, p in reporters)


def test_reporter_in_flat_share_moves_incidents_to_the_reporters_flat():
    _, (_, low) = events(reporter_in_flat=0.35)
    _, (_, default) = events()
    _, (_, high) = events(reporter_in_flat=1.0)
    assert _in_flat(low) < _in_flat(default) < _in_flat(high)
    assert _in_flat(high) == len(high)  # every reported incident is at the reporter's own flat


def test_reported_incidents_share_changes_how_many_have_a_reporter():
    _, (all_events, few) = events(reported_incidents=0.3)
    _, (_, many) = events(reported_incidents=0.95)
    assert len(few) < 0.45 * len(all_events) < 0.8 * len(all_events) < len(many)


def test_reporter_without_phone_drops_the_phone_of_that_share():
    _, (_, default) = events()
    _, (_, none) = events(reporter_without_phone=1.0)
    assert sum(e["reporter_phone"] is None for e, _ in default) < 0.25 * len(default)
    assert all(e["reporter_phone"] is None for e, _ in none)


def test_reporter_name_variants_pad_the_names_and_keep_the_rest():
    _, (_, default) = events()
    _, (_, padded) = events(reporter_name_variants=1.0)
    assert sum(e["reporter_name"] != p.name for e, p in default) < 0.1 * len(default)
    assert all(e["reporter_name"] != p.name for e, p in padded)
    squeezed = Counter(
        e["reporter_name"].replace(" ", "").replace("\u3000", "") in (p.name, names.homophone_typo(p.name))
        for e, p in padded
    )
    assert squeezed[True] == len(padded)
    # the reporter knobs draw from their own generator: the incidents are otherwise the same
    assert [e["event_id"] for e, _ in default] == [e["event_id"] for e, _ in padded]


# -- IDs, phones, addresses, typos ---------------------------------------------------------------------
def test_masked_share_zero_gives_no_masked_ids():
    _, people, items = residents(masked_ids=0.0)
    assert not any(item["id_card"] == masked_id(p.id_number) for item, p in zip(items, people, strict=True))
    _, people, items = residents(masked_ids=0.9)
    masked = sum(item["id_card"] == masked_id(p.id_number) for item, p in zip(items, people, strict=True))
    assert masked > 0.8 * len(items)


def test_missing_phones_scale_the_null_phones():
    def nulls(**q):
        _, people, items = residents(**q)
        return sum(item["phone"] is None for item, p in zip(items, people, strict=True) if p.phone)

    assert nulls(missing_phones=0.0) < nulls() < nulls(missing_phones=3.0)


def test_address_styles_weights_choose_the_styles():
    _, people, items = residents(address_styles=(0, 0, 0, 0, 1), fullwidth_digits=0.0)
    bare = [gridw.address(p.house, "bare") for p in people]
    assert [item["address"] for item in items] == bare


def test_typos_scale_the_grid_name_typos():
    def typos(**q):
        _, people, items = residents(**q)
        return sum(
            item["name"] == names.homophone_typo(p.name) for item, p in zip(items, people, strict=True)
        )

    assert typos(typos=0.5) < typos() < typos(typos=2.0)


def test_stale_phones_scale_old_numbers_in_the_model_and_the_records():
    s_default, s_stale = street(), street(stale_phones=3.0)
    assert sum(bool(p.stale_phone) for p in s_default.persons) < sum(
        bool(p.stale_phone) for p in s_stale.persons
    )
    _, people, items = residents(stale_phones=3.0)
    stale = sum(
        item["phone"] == p.stale_phone for item, p in zip(items, people, strict=True) if p.stale_phone
    )
    assert stale > 0.8 * sum(bool(p.stale_phone) for p in people)


def test_missing_phones_reach_the_iot_card_holders():
    def nulls(**q):
        s = street(**q)
        rng = sub_rng(SEED, "iot")
        devices, doors = iotw.build_devices(rng, s)
        holders = iotw.build_holders(s, doors)
        return sum(item["phone"] is None for item in iotw.cardholders_json(rng, s, holders))

    assert nulls() < nulls(missing_phones=3.0)


# -- namesakes -----------------------------------------------------------------------------------------
def _flats_with_namesakes(s) -> int:
    return sum(len({m.name for m in h.members}) < len(h.members) for h in s.houses)


def _estate_namesakes(s) -> int:
    seen = Counter((p.house.estate.code, p.name) for p in s.persons if p.role == "resident")
    return sum(n - 1 for n in seen.values())


def test_namesakes_in_one_flat_and_in_one_estate():
    default, flats, estates = street(), street(namesakes_flat=0.3), street(namesakes_estate=0.1)
    assert _flats_with_namesakes(default) < _flats_with_namesakes(flats)
    assert _estate_namesakes(default) < _estate_namesakes(estates)
    named = [p for p in flats.persons if "namesake_flat" in p.flags]
    assert named and all(any(m is not p and m.name == p.name for m in p.house.members) for p in named)
    # namesakes are still different people
    assert all(len({m.id_number for m in h.members}) == len(h.members) for h in flats.houses)


# -- profiles and the CLI's KEY=VALUE ------------------------------------------------------------------
def test_profiles_and_assignments():
    assert profile("default") == Quirks()
    assert set(PROFILES) >= {"default", "reporters", "namesakes", "hard"}
    q = profile("reporters").with_values(
        ["typos=2", "address_styles=1/0/0/0/1", "reporter_without_phone=none"]
    )
    assert (q.typos, q.address_styles, q.reporter_without_phone) == (2.0, (1.0, 0.0, 0.0, 0.0, 1.0), None)
    assert q.changed()["reported_incidents"] == PROFILES["reporters"].reported_incidents
    with pytest.raises(ValueError, match="unknown quirks profile"):
        profile("nope")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        Quirks().with_values(["bogus=1"])
    with pytest.raises(ValueError, match="share"):
        Quirks(masked_ids=1.5)


def test_a_varied_street_records_its_quirks_in_meta(tmp_path):
    generate(tmp_path / "s", residents=300, seed=SEED, as_of=AS_OF, quirks=PROFILES["reporters"])
    meta = json.loads((tmp_path / "s" / "truth" / "meta.json").read_text(encoding="utf-8"))
    assert meta["quirks"]["reporter_without_phone"] == PROFILES["reporters"].reporter_without_phone


def test_simulate_command_takes_a_profile_and_overrides(tmp_path, capsys):
    from islandbridge.cli import main

    out = tmp_path / "street"
    args = ["simulate", str(out), "--residents", "300", "--seed", "3", "--quirks", "reporters"]
    assert main([*args, "--quirk", "typos=2", "--quirk", "masked_ids=0"]) == 0
    meta = json.loads((out / "truth" / "meta.json").read_text(encoding="utf-8"))
    assert meta["quirks"]["typos"] == 2.0 and meta["quirks"]["masked_ids"] == 0.0
    assert meta["quirks"]["reporter_in_flat"] == PROFILES["reporters"].reporter_in_flat
    assert main([*args, "--quirk", "typoz=2"]) != 0
    assert "typoz" in capsys.readouterr().err


def test_incidents_per_resident_sets_how_many_incidents():
    _, (default, _) = events()
    _, (more, _) = events(incidents_per_resident=0.5)
    assert len(default) == max(30, round(300 * 0.18)) and len(more) == 150


def test_outside_reporters_replace_that_share_of_reporters_with_people_from_elsewhere():
    s, (plain, plain_reporters) = events(reported_incidents=0.9)
    _, (evs, reporters) = events(reported_incidents=0.9, outside_reporters=0.3)
    visitors = [p for _, p in reporters if p.pid.startswith("V")]
    assert 0.2 < len(visitors) / len(reporters) < 0.4
    assert not {p.pid for p in visitors} & {p.pid for p in s.persons}
    held = {p.phone for p in s.persons}
    assert all(p.phone not in held for p in visitors)
    # every other incident is the very same as without the knob
    before = {e["event_id"]: (e, p.pid) for e, p in plain_reporters}
    residents = [(e, p.pid) for e, p in reporters if not p.pid.startswith("V")]
    assert residents and all(before[e["event_id"]] == (e, pid) for e, pid in residents)
    assert len(evs) == len(plain)


def test_homebound_puts_every_residents_incident_at_their_flat_and_some_reporters_come_from_elsewhere():
    """The street of the source systems' sample with a few visitors: an incident away from its reporter's
    home is never a resident's (what `identity.reporters` must not mistake for one)."""
    _, (_, reporters) = events(**dataclasses.asdict(PROFILES["homebound"]))
    residents = [(e, p) for e, p in reporters if not p.pid.startswith("V")]
    assert _in_flat(residents) == len(residents)
    assert 0 < len(reporters) - len(residents) < 0.1 * len(reporters)
