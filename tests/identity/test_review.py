"""`islandbridge review` on the test street: list → show (masked only) → decide → the next reconciles apply it."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import sqlite3

import duckdb
import pytest
import yaml

from islandbridge.cli import main
from islandbridge.cli.review import format_decision, format_list, format_pair
from islandbridge.config import parse_as_of
from islandbridge.identity import review
from islandbridge.identity.reconcile import reconcile
from islandbridge.privacy.audit import AuditLog
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.masking import mask_name
from islandbridge.transforms.normalize import normalize_name, normalize_phones
from tests.conftest import AS_OF
from tests.identity.conftest import ENVIRON
from tests.identity.support import add_run, person_key_of

DAY = AS_OF.isoformat()
DAY2, DAY3 = "2026-11-21", "2026-11-22"


@pytest.fixture(scope="module")
def identifiers(street) -> dict[str, set[str]]:
    """The street's names, ID numbers (truth) and phones (registry), to look for in what review prints."""
    with (street.truth / "persons.csv").open(encoding="utf-8") as f:
        persons = list(csv.DictReader(f))
    registry = sqlite3.connect(street.root / "street" / "registry" / "rrs.sqlite")
    try:
        phones = {
            n[-11:] for (v,) in registry.execute("SELECT lxdh FROM t_jm") for n in normalize_phones(v).numbers
        }
    finally:
        registry.close()
    return {
        "names": {p["name"] for p in persons if len(p["name"] or "") >= 2},
        "ids": {p["id_number"] for p in persons if p["id_number"]},
        "phones": phones,
    }


def _leaks(text: str, identifiers: dict[str, set[str]]) -> list[str]:
    found = [n for n in identifiers["names"] if n in text]
    numbers = set(re.findall(r"\d{11,18}X?", text))
    return found + sorted(numbers & (identifiers["ids"] | identifiers["phones"]))


def _linked_pair(settings, matched_by: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two records of a two-record person, both matched as ``matched_by`` (from the reconciled map)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT list(system ORDER BY system, record_key), list(record_key ORDER BY system, record_key) "
            "FROM core.identity_map GROUP BY person_key "
            "HAVING count(*) = 2 AND bool_and(matched_by = ?) ORDER BY min(record_key) LIMIT 1",
            [matched_by],
        ).fetchall()
    (systems, keys), *_ = rows
    return (systems[0], keys[0]), (systems[1], keys[1])


def _key(settings, record) -> str | None:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return person_key_of(con, *record)


def _later_days(settings) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as con:
        add_run(con, DAY2)
        add_run(con, DAY3)


def test_list_names_each_open_pair_by_a_stable_id_without_identifiers(warehouse_copy, identifiers):
    listed = review.list_pairs(warehouse_copy)
    assert listed["pairs"] == listed["open"] > 0 and listed["listed"] == listed["pairs"]
    first = listed["rows"][0]
    assert re.fullmatch(r"[0-9a-f]{10}", first["id"]) and first["decided"] is None
    assert first["id"] == review.pair_id(first["right"], first["left"])  # either order, one id
    assert len({r["id"] for r in listed["rows"]}) == len(listed["rows"])
    assert not _leaks(format_list(listed), identifiers)
    limited = review.list_pairs(warehouse_copy, reason="below_threshold", limit=3)
    assert len(limited["rows"]) == 3 and {r["reason"] for r in limited["rows"]} == {"below_threshold"}


def test_show_puts_both_records_side_by_side_masked_and_audits_it(warehouse_copy, identifiers, tmp_path):
    settings = dataclasses.replace(warehouse_copy, audit_path=tmp_path / "audit.jsonl")
    pair = next(r for r in review.list_pairs(settings)["rows"] if r["reason"] == "below_threshold")
    shown = review.show_pair(settings, pair["id"], actor="tester")
    text = format_pair(shown) + json.dumps(shown, ensure_ascii=False, default=str)
    assert not _leaks(text, identifiers)
    assert (shown["left"]["system"], shown["left"]["record_key"]) == min(pair["left"], pair["right"])
    for side in (shown["left"], shown["right"]):
        assert re.fullmatch(r".\*+.?", side["name"]), side["name"]  # 张*伟, 张*
        assert all(re.fullmatch(r"1\d\d\*{4}\d{4}", p) for p in side["phones"]), side["phones"]
        assert side["id_number"] is None or "********" in side["id_number"] or side["id_number"] == "***"
    assert any(s["birth_year"] or s["room"] for s in (shown["left"], shown["right"]))
    (entry,) = AuditLog(settings.audit_path).entries()
    assert (
        entry.actor == "tester"
        and entry.department == review.AUDIT_DEPARTMENT
        and pair["id"] in entry.purpose
    )


def test_different_on_a_linked_pair_splits_it_in_every_later_reconcile_and_survives_a_rewind(warehouse_copy):
    """The decision changes the next reconcile, stays applied in the one after, and in a re-run of an
    earlier day after later ones (the rewind forgets runs, never decisions)."""
    left, right = _linked_pair(warehouse_copy, "probabilistic")
    assert _key(warehouse_copy, left) == _key(warehouse_copy, right)
    decided = review.decide(
        warehouse_copy, f"{'/'.join(left)}~{'/'.join(right)}", "different", actor="tester"
    )
    _later_days(warehouse_copy)
    summary = reconcile(warehouse_copy, parse_as_of(DAY2))
    assert summary["decisions"] == {"applied": 1, "absent": 0, "conflicts": []}
    assert _key(warehouse_copy, left) != _key(warehouse_copy, right)
    reconcile(warehouse_copy, parse_as_of(DAY3))
    assert _key(warehouse_copy, left) != _key(warehouse_copy, right)
    again = reconcile(warehouse_copy, parse_as_of(DAY))  # rewinds days 2 and 3
    assert again["forgotten"] and again["decisions"]["applied"] == 1
    assert _key(warehouse_copy, left) != _key(warehouse_copy, right)
    reconcile(warehouse_copy, parse_as_of(DAY3))
    assert _key(warehouse_copy, left) != _key(warehouse_copy, right)
    assert decided["pair"] not in {r["id"] for r in review.list_pairs(warehouse_copy)["rows"]}


def test_same_on_a_review_pair_joins_it_and_it_leaves_the_open_list(warehouse_copy):
    listed = review.list_pairs(warehouse_copy, reason="below_threshold")
    pair = listed["rows"][0]
    assert _key(warehouse_copy, pair["left"]) != _key(warehouse_copy, pair["right"])
    review.decide(warehouse_copy, pair["id"], "same", actor="tester", note="同一楼层, 出生年相同")
    after = review.list_pairs(warehouse_copy)
    assert next(r for r in after["rows"] if r["id"] == pair["id"])["decided"] == "same"
    assert (after["pairs"], after["open"]) == (listed["pairs"], listed["open"] - 1)
    assert pair["id"] not in {r["id"] for r in review.list_pairs(warehouse_copy, open_only=True)["rows"]}
    _later_days(warehouse_copy)
    summary = reconcile(warehouse_copy, parse_as_of(DAY2))
    conflicts = summary["decisions"]["conflicts"]
    if conflicts:  # two different valid ID numbers: reported, not merged
        assert conflicts == [{"pair": pair["id"], "decision": "same", "reason": "different_id"}]
    else:
        assert _key(warehouse_copy, pair["left"]) == _key(warehouse_copy, pair["right"])
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        assert review.open_reviews(con) == summary["reviews"]
        listed_now = {r["id"] for r in review.list_pairs(warehouse_copy)["rows"]}
    assert pair["id"] not in listed_now


def test_a_withdrawn_decision_gives_the_pair_back_to_the_model(warehouse_copy):
    """A split the model did not make is undone by withdrawing it; the history keeps both rows."""
    left, right = _linked_pair(warehouse_copy, "probabilistic")
    ref = f"{'/'.join(left)}~{'/'.join(right)}"
    never = review.list_pairs(warehouse_copy, open_only=True)["rows"][0]["id"]
    with pytest.raises(review.ReviewError, match="nothing to withdraw"):
        review.withdraw(warehouse_copy, never, actor="tester")
    decided = review.decide(warehouse_copy, ref, "different", actor="tester")
    _later_days(warehouse_copy)
    reconcile(warehouse_copy, parse_as_of(DAY2))
    assert _key(warehouse_copy, left) != _key(warehouse_copy, right)
    withdrawn = review.withdraw(warehouse_copy, decided["pair"], actor="tester", note="核实有误")
    assert withdrawn == {**withdrawn, "pair": decided["pair"], "withdrawn": "different"}
    summary = reconcile(warehouse_copy, parse_as_of(DAY3))
    assert summary["decisions"]["applied"] == 0
    assert _key(warehouse_copy, left) == _key(warehouse_copy, right)  # the model's link again
    with pytest.raises(review.ReviewError, match="nothing to withdraw"):
        review.withdraw(warehouse_copy, ref, actor="tester")
    assert review.decide(warehouse_copy, decided["pair"], "same", actor="tester")["replaces"] is None
    review.withdraw(warehouse_copy, decided["pair"], actor="tester")  # found by its id after a withdrawal
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        assert review.current_decisions(con) == []
        history = con.execute("SELECT decision FROM core.identity_decisions ORDER BY seq").fetchall()
    assert history == [("different",), ("withdrawn",), ("same",), ("withdrawn",)]


def test_different_against_equal_id_numbers_keeps_the_id_link_and_reports_the_conflict(warehouse_copy):
    left, right = _linked_pair(warehouse_copy, "id")
    decided = review.decide(
        warehouse_copy, f"{'/'.join(left)}~{'/'.join(right)}", "different", actor="tester"
    )
    _later_days(warehouse_copy)
    summary = reconcile(warehouse_copy, parse_as_of(DAY2))
    conflict = {"pair": decided["pair"], "decision": "different", "reason": "same_id"}
    assert summary["decisions"]["conflicts"] == [conflict]
    assert _key(warehouse_copy, left) == _key(warehouse_copy, right)
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        stored = con.execute("SELECT decisions FROM meta.identity_runs WHERE as_of = ?", [parse_as_of(DAY2)])
        assert json.loads(stored.fetchall()[0][0])["conflicts"] == [conflict]


def test_a_note_with_a_long_number_is_refused_and_nothing_is_stored(warehouse_copy):
    pair = review.list_pairs(warehouse_copy)["rows"][0]
    with pytest.raises(review.ReviewError, match="six or more digits"):
        review.decide(
            warehouse_copy, pair["id"], "different", actor="tester", note="电话 １３８００１３８０００"
        )
    with pytest.raises(review.ReviewError, match="no pair"):
        review.decide(warehouse_copy, "0000000000", "different", actor="tester")
    assert review.list_pairs(warehouse_copy)["rows"][0]["decided"] is None
    review.decide(warehouse_copy, pair["id"], "different", actor="tester", note="call 138-0013 8000")
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT note FROM core.identity_decisions").fetchall() == [("call [电话]",)]


def test_a_note_naming_the_pairs_person_in_pinyin_is_scrubbed(warehouse_copy):
    """`review decide --note` scrubbed the known names in characters but kept them typed in pinyin: the
    names of the pair's records are scrubbed in pinyin too (as `reveal` scrubs its purpose)."""
    from pypinyin import Style, lazy_pinyin

    names = _record_names(warehouse_copy)
    pair = next(
        p
        for p in review.list_pairs(warehouse_copy)["rows"]
        if 2 <= len(names.get(tuple(p["left"])) or "") <= 3
    )
    surname, *given = lazy_pinyin(names[tuple(pair["left"])], style=Style.NORMAL)
    typed = f"{''.join(given).title()} {surname.upper()}"  # surname last, as a form in English has it
    review.decide(warehouse_copy, pair["id"], "different", actor="tester", note=f"asked {typed} at home")
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        stored = con.execute("SELECT note FROM core.identity_decisions").fetchall()
    assert stored == [("asked [姓名] at home",)]


def _config(street, settings, tmp_path) -> str:
    """The street's configuration, pointed at the copies (absolute paths)."""
    config = yaml.safe_load((street.root / "islandbridge.yml").read_text(encoding="utf-8"))
    config["warehouse"]["path"] = str(settings.warehouse_path)
    config["vault"]["path"] = str(settings.vault_path)
    config["audit"] = {"path": str(tmp_path / "audit.jsonl")}
    for ref in config["keys"].values():
        if isinstance(ref, dict) and "file" in ref:
            ref["file"] = str(street.root / ref["file"])
    path = tmp_path / "islandbridge.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_show_says_whether_two_names_masked_alike_are_the_same(warehouse_copy, identifiers, tmp_path):
    """梁伟 and 梁静 both mask to 梁*: show says whether the two records' names are the same, the same only
    in pinyin, or different (as the vault's names of the two records say), and never the names."""
    settings = dataclasses.replace(warehouse_copy, audit_path=tmp_path / "audit.jsonl")
    names = _record_names(settings)
    first = {}  # one pair of each kind whose two names mask alike
    for pair in review.list_pairs(settings)["rows"]:
        left, right = names.get(tuple(pair["left"])), names.get(tuple(pair["right"]))
        if left and right and mask_name(left) == mask_name(right):
            pinyin = normalize_name(left).pinyin_key == normalize_name(right).pinyin_key
            kind = (
                "the same"
                if left == right
                else "different characters, the same in pinyin"
                if pinyin
                else "different"
            )
            first.setdefault(kind, pair["id"])
    assert {"the same", "different characters, the same in pinyin"} <= set(first), first
    for kind, pid in first.items():
        shown = review.show_pair(settings, pid, actor="tester")
        assert shown["left"]["name"] == shown["right"]["name"] and shown["names"] == kind, (
            pid,
            shown["names"],
        )
        assert f"\nnames: {kind}\n" in format_pair(shown) and not _leaks(format_pair(shown), identifiers)


def _record_names(settings) -> dict[tuple[str, str], str]:
    """Each record's name as the vault holds it, normalised as matching reads it."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        persons = [k for (k,) in con.execute("SELECT DISTINCT person_key FROM core.identity_map").fetchall()]
    with open_vault(settings) as vault:
        found = vault.get(persons, ["name"])
    return {
        (v.system, v.record_key): normalize_name(v.value).name_key for f in found.values() for v in f["name"]
    }


def test_a_decision_and_a_withdrawal_print_as_text_naming_the_pair_and_what_they_replace():
    decided = {"pair": "3f9a0c2b1d", "left": "a/1", "right": "b/2", "applies": "at the next reconcile"}
    assert format_decision({**decided, "decision": "same", "replaces": "different"}) == (
        "decided pair 3f9a0c2b1d (a/1 ~ b/2) same, replacing different\napplies at the next reconcile"
    )
    assert format_decision({**decided, "withdrawn": "same"}).startswith(
        "withdrew the decision same on pair 3f9a0c2b1d (a/1 ~ b/2)\n"
    )


def test_the_command_line_round_trip(street, warehouse_copy, identifiers, monkeypatch, capsys, tmp_path):
    """list → show → decide through `islandbridge review`, with no source secret in the environment."""
    config = _config(street, warehouse_copy, tmp_path)
    for name in ENVIRON:
        monkeypatch.delenv(name, raising=False)
    assert main(["review", "list", "--config", config, "--limit", "2"]) == 0
    listed = capsys.readouterr().out
    pair_id = re.search(r"^([0-9a-f]{10}) ", listed, re.M).group(1)
    assert main(["review", "show", pair_id, "--config", config, "--actor", "tester"]) == 0
    shown = capsys.readouterr().out
    assert "left" in shown and "right" in shown and not _leaks(listed + shown, identifiers)
    assert main(["review", "decide", pair_id, "different", "--config", config, "--actor", "tester"]) == 0
    decided = capsys.readouterr().out
    assert (
        decided.startswith(f"decided pair {pair_id} (")
        and "different\napplies at the next reconcile" in decided
    )
    assert main(["review", "list", "--config", config, "--open", "--limit", "0"]) == 0
    assert pair_id not in capsys.readouterr().out
    assert main(["review", "withdraw", pair_id, "--config", config, "--actor", "tester", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["withdrawn"] == "different"
    assert main(["review", "list", "--config", config, "--open", "--limit", "0"]) == 0
    assert pair_id in capsys.readouterr().out  # open again
    assert (tmp_path / "audit.jsonl").read_text(encoding="utf-8").count("\n") == 3  # show, decide, withdraw


@pytest.mark.parametrize(
    ("ref", "shown"),
    [
        ("511403194310287757~x", "511403********7757"),
        ("resident_registry/秦光明~resident_registry/t_jm:100002", "resident_registry/秦*明"),
        ("18798377461", "187****7461"),
    ],
)
def test_a_pair_naming_personal_data_is_masked_in_the_error(warehouse_copy, ref, shown):
    """`review decide 511403194310287757~x same` must not repeat the ID number whole in its error."""
    with pytest.raises(review.ReviewError) as refused:
        review.decide(warehouse_copy, ref, "same", actor="tester")
    assert shown in str(refused.value)
    assert not any(part in str(refused.value) for part in ("511403194310287757", "秦光明", "18798377461"))


def test_a_decision_without_a_note_needs_no_vault_key(warehouse_copy):
    """Only a note is scrubbed against the pair's names from the vault: a decision without one is taken
    where the vault key is not set (as before the pinyin scrub), and one with a note says which key."""
    keys = {name: key for name, key in warehouse_copy.keys.items() if name != "vault"}
    settings = dataclasses.replace(
        warehouse_copy, keys=keys, unresolved_keys={"vault": "ISLANDBRIDGE_VAULT_KEY is not set"}
    )
    pair = review.list_pairs(settings)["rows"][0]
    review.decide(settings, pair["id"], "different", actor="tester")
    with pytest.raises(Exception, match="vault"):
        review.decide(settings, pair["id"], "same", actor="tester", note="same flat, same birth year")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT decision FROM core.identity_decisions").fetchall() == [("different",)]
