"""Operator re-identification: only with a purpose, only policy fields, always audited, never logged."""

from __future__ import annotations

import pytest

from islandbridge.delivery.reveal import RevealError, reveal
from islandbridge.devtools.leakscan import Needles, scan_tree
from islandbridge.privacy.audit import AuditLog
from islandbridge.privacy.configured import vault_keyring
from islandbridge.privacy.keys import load_keys
from islandbridge.privacy.pseudonymise import person_refs
from islandbridge.privacy.sealing import KNOWN_NAMES
from islandbridge.privacy.vault import Vault
from tests.exports.support import P1, P3, P4, VALUES

PURPOSE = "resident reported a fall; calling back"


def refs(settings, department, *keys):
    dept = load_keys(settings.keys, departments=[department]).department(department)
    return person_refs(dept, list(keys)).to_pylist()


def entries(settings):
    return list(AuditLog(settings.audit_path).entries())


def test_reveal_by_person_ref_returns_the_policy_fields_and_is_audited(settings):
    gc1, gc3 = refs(settings, "grid_centre", P1, P3)
    found = reveal(
        settings,
        department="grid_centre",
        person_refs=[gc1, gc3],
        columns=["name", "phone"],
        purpose=PURPOSE,
        actor="wang.li",
    )
    assert found.rows == (
        {"person_ref": gc1, "name": "张小伟", "phone": "13800138000"},
        {"person_ref": gc3, "name": "赵六", "phone": "13700137000"},
    )
    [entry] = entries(settings)
    assert (entry.actor, entry.department, entry.purpose) == ("wang.li", "grid_centre", f"reveal: {PURPOSE}")
    assert entry.person_refs == (gc1, gc3) and entry.columns == ("name", "phone")
    assert found.audit_seq == entry.seq


def test_reveal_by_person_key_audits_the_departments_refs(settings):
    found = reveal(
        settings,
        department="civil_affairs",
        person_keys=[P4],
        columns=["id_number", "birth_date"],
        purpose="roster correction",
        actor="li.na",
    )
    [ca4] = refs(settings, "civil_affairs", P4)
    assert found.rows == ({"person_ref": ca4, "id_number": "51142119440427524X", "birth_date": "1944-04"},)
    assert entries(settings)[0].person_refs == tuple(refs(settings, "civil_affairs", P4))


def test_masked_reveal_shows_only_enough_to_recognise_someone(settings):
    found = reveal(
        settings,
        department="grid_centre",
        person_keys=[P1],
        columns=["name", "phone"],
        purpose=PURPOSE,
        actor="wang.li",
        masked=True,
    )
    assert found.rows[0]["name"] == "张*伟" and found.rows[0]["phone"] == "138****8000"
    assert entries(settings)[0].columns == ("name (masked)", "phone (masked)")


@pytest.mark.parametrize(
    ("purpose", "actor"), [("", "wang.li"), ("   ", "wang.li"), (PURPOSE, ""), (PURPOSE, " ")]
)
def test_a_reveal_without_purpose_or_actor_is_refused(settings, purpose, actor):
    with pytest.raises(RevealError, match="needs a stated"):
        reveal(
            settings,
            department="grid_centre",
            person_keys=[P1],
            columns=["name"],
            purpose=purpose,
            actor=actor,
        )
    assert not settings.audit_path.exists()


@pytest.mark.parametrize(
    ("department", "columns"),
    [
        ("grid_centre", ["id_number"]),
        ("grid_centre", ["bank_card"]),
        ("civil_affairs", ["phone"]),
        ("street_office", ["name"]),
        ("grid_centre", []),
    ],
)
def test_a_field_outside_the_departments_policy_is_refused(settings, department, columns):
    with pytest.raises(RevealError, match="may not be shown"):
        reveal(
            settings,
            department=department,
            person_keys=[P1],
            columns=columns,
            purpose=PURPOSE,
            actor="wang.li",
        )
    assert not settings.audit_path.exists()


def test_an_unknown_department_is_refused(settings):
    with pytest.raises(RevealError, match="no export policy for department 'police'"):
        reveal(settings, department="police", person_keys=[P1], columns=["name"], purpose=PURPOSE, actor="x")


def test_another_departments_ref_is_unknown_here(settings):
    """Refs do not join across departments: civil affairs' ref names nobody for the grid centre."""
    [ca1] = refs(settings, "civil_affairs", P1)
    with pytest.raises(RevealError, match="not grid_centre's refs"):
        reveal(
            settings,
            department="grid_centre",
            person_refs=[ca1],
            columns=["name"],
            purpose=PURPOSE,
            actor="x",
        )
    assert not settings.audit_path.exists()


def test_persons_are_named_one_way(settings):
    with pytest.raises(RevealError, match="exactly one"):
        reveal(
            settings,
            department="grid_centre",
            person_keys=[P1],
            person_refs=[],
            columns=["name"],
            purpose=PURPOSE,
            actor="x",
        )
    with pytest.raises(RevealError, match="no person named"):
        reveal(
            settings, department="grid_centre", person_keys=[], columns=["name"], purpose=PURPOSE, actor="x"
        )


def test_values_are_never_logged_nor_printed_by_repr(settings, caplog):
    with caplog.at_level("DEBUG"):
        found = reveal(
            settings,
            department="civil_affairs",
            person_keys=[P1, P4],
            columns=["name", "id_number"],
            purpose=PURPOSE,
            actor="wang.li",
        )
    assert "reveal for civil_affairs" in caplog.text
    for text in (caplog.text, repr(found), str(found), settings.audit_path.read_text(encoding="utf-8")):
        assert not [v for v in VALUES if v in text]


@pytest.mark.parametrize(
    "actor", ["wang li", "wang.li\nseq 9 forged", "王丽", "a" * 65, "x;rm -rf", "li\u200bna", "'; DROP"]
)
def test_an_actor_that_is_not_an_account_name_is_refused(settings, actor):
    with pytest.raises(RevealError, match="needs a stated actor: an account name"):
        reveal(
            settings,
            department="grid_centre",
            person_keys=[P1],
            columns=["name"],
            purpose=PURPOSE,
            actor=actor,
        )
    assert not settings.audit_path.exists()


@pytest.mark.parametrize("purpose", [".", "...", "a b", "x", "!?!?!?", "- - - -", "1."])
def test_a_purpose_that_says_nothing_is_refused(settings, purpose):
    with pytest.raises(RevealError, match="needs a stated purpose of at least 4"):
        reveal(
            settings,
            department="grid_centre",
            person_keys=[P1],
            columns=["name"],
            purpose=purpose,
            actor="li",
        )
    assert not settings.audit_path.exists()


@pytest.mark.parametrize("purpose", ["回访老人", "call back", "visit #12"])
def test_a_short_real_purpose_is_accepted(settings, purpose):
    found = reveal(
        settings, department="grid_centre", person_keys=[P1], columns=["name"], purpose=purpose, actor="li"
    )
    assert found.audit_seq == 1


def test_an_unknown_person_key_is_refused_before_anything_is_audited(settings):
    with pytest.raises(RevealError, match=r"1 person_key is not in the warehouse"):
        reveal(
            settings,
            department="grid_centre",
            person_keys=[P1, "pk_" + "f" * 32],
            columns=["name"],
            purpose=PURPOSE,
            actor="wang.li",
        )
    assert not settings.audit_path.exists()


def test_personal_data_typed_as_a_ref_key_or_department_is_masked_in_the_error(settings):
    """An ID number typed as a person_ref, a phone as a person_key, a name as a department: each comes
    back masked in the error, as a reveal with --masked shows values."""
    asked = [
        ({"department": "grid_centre", "person_refs": ["511403194310287757"]}, "511403********7757"),
        ({"department": "grid_centre", "person_keys": ["18798377461"]}, "187****7461"),
        ({"department": "秦光明", "person_keys": [P1]}, "秦*明"),
    ]
    for who, shown in asked:
        with pytest.raises(RevealError) as refused:
            reveal(settings, **who, columns=["name"], purpose=PURPOSE, actor="wang.li")
        assert shown in str(refused.value)
        assert not any(p in str(refused.value) for p in ("511403194310287757", "18798377461", "秦光明"))


def test_a_purpose_is_audited_scrubbed_and_its_identifiers_reach_no_file(settings, caplog):
    """A purpose is free text: an ID number, a phone or a known name in it is stored as a placeholder, and
    none of them is in any table, log or audit file the reveal leaves behind."""
    _know(settings, "秦光明")
    purpose = "秦光明 asked, ID 511403194310287757, call back on 187-9837-7461"
    asked = {"department": "grid_centre", "person_keys": [P1], "columns": ["name"]}
    with caplog.at_level("DEBUG"):
        reveal(settings, **asked, purpose=purpose, actor="li")
    [entry] = entries(settings)
    assert entry.purpose == "reveal: [姓名] asked, ID [证件号], call back on [电话]"
    (settings.warehouse_path.parent / "reveal.log").write_text(caplog.text, encoding="utf-8")
    needles = Needles.from_values(ids=["511403194310287757"], phones=["18798377461"], names=["秦光明"])
    scanned = scan_tree(settings.warehouse_path.parent.parent, needles)
    assert sum(scanned.files.values()) >= 3 and scanned.ok, scanned.report(limit=5)


@pytest.mark.parametrize(
    "purpose",
    [
        "511403194310287757",
        "秦光明 187-9837-7461",
        "[证件号]",
        "秦光明: 511403194310287757",
        "秦 光　明 138 0013 8000",
    ],
)
def test_a_purpose_that_is_only_identifiers_is_refused_before_anything_is_audited(settings, purpose):
    """Scrubbed, such a purpose would be audited as ``reveal: [证件号]``: no reason anyone can check."""
    _know(settings, "秦光明")
    with pytest.raises(RevealError, match="beyond the ID numbers, phones or names") as refused:
        _name_of_p1(settings, purpose)
    assert not settings.audit_path.exists()
    assert not any(p in str(refused.value) for p in ("511403194310287757", "18798377461", "秦光明"))


def test_a_purpose_with_a_reason_beside_its_identifiers_is_accepted(settings):
    found = _name_of_p1(settings, "[urgent] call back 187-9837-7461")
    assert entries(settings)[0].purpose == "reveal: [urgent] call back [电话]" and found.audit_seq == 1


def _know(settings, name: str) -> None:
    """Make ``name`` one of the street's known names (sealed in the vault), as a synced street's are."""
    with Vault.open(settings.vault_path, vault_keyring(settings)) as vault:
        vault.put_sealed_list(KNOWN_NAMES, [*vault.sealed_list(KNOWN_NAMES), name])


def _name_of_p1(settings, purpose: str):
    return reveal(
        settings, department="grid_centre", person_keys=[P1], columns=["name"], purpose=purpose, actor="li"
    )


def test_a_name_typed_with_spaces_is_scrubbed_in_the_purpose(settings):
    _know(settings, "秦光明")
    _name_of_p1(settings, "秦 光 明 welfare visit")
    _name_of_p1(settings, "call 秦\u200b光·明 back")
    assert [e.purpose for e in entries(settings)] == [
        "reveal: [姓名] welfare visit",
        "reveal: call [姓名] back",
    ]


def test_a_revealed_persons_name_typed_in_pinyin_is_scrubbed_in_the_purpose(settings):
    """P1's records name 张小伟, 张晓伟, 张小卫 (zhang xiao wei): typed in pinyin the usual ways (any case,
    spaced or run together, surname last, tone marks) it is audited as a name; a surname alone is none."""
    typed = ["Zhang Xiaowei", "zhangxiaowei", "XIAOWEI ZHANG", "Zhāng Xiǎo-wěi", "zhang xiao wei"]
    for name in typed:
        _name_of_p1(settings, f"visit {name} at home")
    _name_of_p1(settings, "ask Mr Zhang's daughter")
    assert [e.purpose for e in entries(settings)] == [
        *["reveal: visit [姓名] at home"] * len(typed),
        "reveal: ask Mr Zhang's daughter",
    ]
    with pytest.raises(RevealError, match="beyond the ID numbers, phones or names"):
        _name_of_p1(settings, "zhang xiaowei 138 0013 8000")


def test_a_pinyin_name_typed_with_commas_tone_digits_full_width_or_hidden_marks_is_scrubbed(settings):
    """What input methods and keyboards also give: a comma or underscore between the parts, tone digits,
    full-width letters, a zero-width space, the breve for the third tone."""
    typed = [
        "Zhang, Xiaowei",
        "Zhang1 Xiao3 Wei3",
        "zhang1xiao3wei3",
        "ＺｈａｎｇＸｉａｏｗｅｉ",
        "Zhang\u200bXiaowei",
        "Zhang Xiăowěi",
        "ZHANG_Xiaowei",
    ]
    for name in typed:
        _name_of_p1(settings, f"visit {name} at home")
    assert [e.purpose for e in entries(settings)] == ["reveal: visit [姓名] at home"] * len(typed)


def test_a_name_with_a_character_pinyin_cannot_read_is_not_searched_in_pinyin():
    """㐂 has no reading in pypinyin: 㐂安 in pinyin would be a bare ``an`` and blank 'an elderly man'."""
    from islandbridge.privacy.pinyin import pinyin_names

    assert pinyin_names(["㐂安"]) is None
    both = pinyin_names(["㐂安", "张伟"])
    assert both.search("visit Zhang Wei") and not both.search("visit an elderly man")
