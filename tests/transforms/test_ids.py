"""ID-card numbers: every quirk of SPEC A/B/C, and the properties that keep wrong merges out."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from islandbridge.transforms.normalize.ids import KINDS, normalize_id
from tests.transforms.strategies import legacy_ids, make_id, make_legacy, messy_ids, valid_ids

VALID = make_id("110101", dt.date(1990, 3, 7), 2)  # 11010119900307002X: ends in the check digit X


def test_valid_number_is_full_with_birth_date_sex_and_region():
    result = normalize_id(VALID)
    assert (result.kind, result.value, result.birth_date, result.sex, result.region, result.reason) == (
        "full",
        VALID,
        dt.date(1990, 3, 7),
        "F",
        "110101",
        None,
    )


@pytest.mark.parametrize(
    "typed",
    [
        VALID.lower(),  # lower-case x
        f"{VALID[:6]} {VALID[6:14]} {VALID[14:]}",  # spaces inside
        VALID + " ",  # trailing space
        f"{VALID[:6]}\u3000{VALID[6:]}",  # ideographic space
        "'" + VALID,  # apostrophe kept by an export
        VALID.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")),  # full width
    ],
)
def test_typing_variants_give_the_canonical_number(typed):
    assert normalize_id(typed).value == VALID


def test_sex_comes_from_the_seventeenth_digit():
    assert normalize_id(make_id(sequence=1)).sex == "M"
    assert normalize_id(make_id(sequence=2)).sex == "F"


def test_integer_input_is_read_as_its_digits():
    number = make_id(sequence=11)
    assert normalize_id(int(number)).value == number


def test_legacy_15_digit_number_is_upgraded_with_century_and_check_digit():
    result = normalize_id(make_legacy("510104", dt.date(1960, 5, 4), 37))
    assert result.kind == "legacy15_upgraded"
    assert result.value == make_id("510104", dt.date(1960, 5, 4), 37)
    assert result.birth_date == dt.date(1960, 5, 4)


@given(legacy_ids)
def test_legacy_upgrade_is_checksum_valid_and_keeps_the_birth_date(legacy):
    result = normalize_id(legacy)
    assert result.kind == "legacy15_upgraded"
    assert ric.calc_check_digit(result.value) == result.value[-1]
    assert result.birth_date == ric.get_birth_date(result.value)
    assert f"{result.birth_date:%y%m%d}" == legacy[6:12]


@given(valid_ids, st.integers(1, 10))
def test_check_digit_typo_is_invalid_checksum(number, shift):
    alphabet = "0123456789X"
    typo = number[:-1] + alphabet[(alphabet.index(number[-1]) + shift) % 11]
    result = normalize_id(typo)
    assert (result.kind, result.value, result.birth_date, result.sex) == (
        "invalid_checksum",
        None,
        None,
        None,
    )


def test_valid_number_ending_in_000_is_not_taken_for_excel_damage():
    number = next(
        make_id(born=dt.date(1980, 1, day), sequence=seq)
        for day in range(1, 29)
        for seq in range(0, 1000, 100)
        if make_id(born=dt.date(1980, 1, day), sequence=seq).endswith("000")
    )
    assert normalize_id(number).kind == "full"


@pytest.mark.parametrize(
    "damaged",
    [
        "5.11403E+17",
        "4.201021959100794e+17",
        "511403194401187000.0",
        " 5.11403E+17 ",
        "5.11403E17",
        "511403900308350.0",
        4.201021959100794e17,
    ],
)
def test_spreadsheet_floats_are_excel_damaged_and_never_repaired(damaged):
    result = normalize_id(damaged)
    assert (result.kind, result.value, result.birth_date) == ("excel_damaged", None, None)


@given(valid_ids)
def test_float_forms_of_any_valid_number_are_excel_damaged(number):
    as_float = float(number[:17]) * 10  # the check digit may be X; its place is lost in a float anyway
    for form in (repr(as_float), f"{as_float:.5E}", f"{as_float:.14E}", f"{as_float:.1f}", as_float):
        result = normalize_id(form)
        assert (result.kind, result.value) == ("excel_damaged", None), form


def test_masked_number_keeps_prefix_suffix_and_mask_length():
    result = normalize_id("510104********0696")
    assert (result.kind, result.prefix, result.suffix, result.mask_length, result.region) == (
        "masked",
        "510104",
        "0696",
        8,
        "510104",
    )
    assert (result.value, result.birth_date, result.sex) == (None, None, None)
    assert result.canonical == "510104********0696"


@pytest.mark.parametrize("raw", ["E12345678", "g12345678", "EA1234567", " E1234 5678 "])
def test_passport_numbers_are_kept_apart_from_id_numbers(raw):
    result = normalize_id(raw)
    assert (result.kind, result.value) == ("passport", None)
    assert result.passport == raw.replace(" ", "").upper()


@pytest.mark.parametrize("raw", [None, "", "   ", "\u3000", "NULL", "无", "******************"])
def test_empty_values_are_missing(raw):
    assert normalize_id(raw).kind == "missing"


@pytest.mark.parametrize("raw", ["abc", "12345", VALID[:-2], VALID + "1", "51010419681322505X", b"x", [1]])
def test_other_values_are_garbage_or_invalid_never_full(raw):
    result = normalize_id(raw)
    assert result.kind in {"garbage", "invalid_checksum"}
    assert result.value is None


def test_matching_check_digit_with_impossible_birth_date_is_garbage():
    body = "11010119901307002"  # month 13
    assert normalize_id(body + ric.calc_check_digit(body + "0")).kind == "garbage"


@given(st.one_of(st.none(), st.text(), st.floats(), st.integers(), st.binary()))
def test_never_raises_and_always_names_a_known_kind(raw):
    result = normalize_id(raw)
    assert result.kind in KINDS
    assert (result.value is not None) == (result.kind in {"full", "legacy15_upgraded"})


@given(st.one_of(messy_ids(), st.text(alphabet="0123456789Xx* .E+'", max_size=22)))
def test_normalising_the_canonical_output_again_gives_the_same(raw):
    canonical = normalize_id(raw).canonical
    if canonical is not None:
        assert normalize_id(canonical).canonical == canonical


@given(
    st.one_of(
        messy_ids(), valid_ids.map(lambda n: n[:-1] + "0"), st.text(alphabet="0123456789*.E+", max_size=20)
    )
)
def test_reasons_never_quote_the_number(raw):
    reason = normalize_id(raw).reason or ""
    assert not re.search(r"[0-9]{5}", reason)


@pytest.mark.parametrize("typed", ["360102200210121000", "'360102200210121000", " 360102200210121000 "])
def test_from_a_spreadsheet_18_digits_ending_in_000_are_damage_whatever_the_check_digit(typed):
    """Excel keeps 15 significant digits: ``…000`` from a roster identifies nobody, even when it happens to
    pass the check digit; the same number from a database is still an ID."""
    assert normalize_id(typed).kind == "full"
    damaged = normalize_id(typed, spreadsheet=True)
    assert (damaged.kind, damaged.value, damaged.birth_date) == ("excel_damaged", None, None)
    assert "360102" not in (damaged.reason or "")


def test_spreadsheet_rule_leaves_other_roster_ids_alone():
    assert normalize_id("11010119900307002x", spreadsheet=True).kind == "full"
    assert normalize_id("110101199003070020", spreadsheet=True).kind == "invalid_checksum"
