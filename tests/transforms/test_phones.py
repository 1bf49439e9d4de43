"""Phone fields: every SPEC format to E.164, several numbers per field, landlines, placeholders."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandbridge.transforms.normalize.phones import STATUSES, normalize_phones
from tests.transforms.strategies import mobiles

E164 = "+8613800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "138-0013-8000",
        "+86 13800138000",
        "8613800138000",
        "138 0013 8000",
        "１３８００１３８０００",
        " 13800138000 ",
        "0086-138-0013-8000",
        13800138000,
        13800138000.0,
    ],
)
def test_every_spec_format_gives_one_e164_mobile(raw):
    assert normalize_phones(raw) == ((E164,), (E164,), "ok", None)


@pytest.mark.parametrize("separator", ["/", "、", ",", ";", " / ", "，", "；"])
def test_two_numbers_in_one_field_give_both_in_order(separator):
    result = normalize_phones(f"13900139000{separator}138-0013-8000")
    assert result.numbers == ("+8613900139000", E164)
    assert result.status == "ok"


def test_two_numbers_separated_by_a_blank_give_both():
    assert normalize_phones("13900139000 13800138000").numbers == ("+8613900139000", E164)


def test_the_same_number_twice_is_kept_once():
    assert normalize_phones("13800138000/138-0013-8000").numbers == (E164,)


def test_landline_is_kept_as_a_valid_number_but_not_a_mobile():
    result = normalize_phones("028-12345678")
    assert (result.numbers, result.mobiles, result.status) == (("+862812345678",), (), "ok")


def test_mobile_and_landline_together_list_only_the_mobile_as_mobile():
    result = normalize_phones("028-12345678/13800138000")
    assert result.numbers == ("+862812345678", E164)
    assert result.mobiles == (E164,)


@pytest.mark.parametrize("raw", [None, "", "  ", "无", "-", "NULL", "null", "暂无", "/"])
def test_placeholders_are_missing(raw):
    assert normalize_phones(raw) == ((), (), "missing", normalize_phones(raw).reason)


@pytest.mark.parametrize("raw", ["abc", "12345", "1380013800", "138001380001", "电话", "13800138000" * 5])
def test_garbage_is_invalid_with_a_reason_that_does_not_quote_it(raw):
    result = normalize_phones(raw)
    assert (result.numbers, result.status) == ((), "invalid")
    assert result.reason and not re.search(r"[0-9]{5}", result.reason)


def test_one_good_and_one_bad_part_is_partial():
    result = normalize_phones("13800138000/12345")
    assert (result.numbers, result.status) == ((E164,), "partial")


@given(
    mobiles,
    st.sampled_from(["{}", "{0}{1}{2}-{3}{4}{5}{6}-{7}{8}{9}{10}", "+86 {}", "86{}", "0086-{}", "+86-{}"]),
)
def test_the_fast_path_agrees_with_phonenumbers_parse(number, style):
    typed = style.format(*number) if "{0}" in style else style.format(number)
    parsed = phonenumbers.parse(typed, "CN")
    expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_phones(typed).numbers == ((expected,) if phonenumbers.is_valid_number(parsed) else ())


@given(st.one_of(st.none(), st.text(), st.integers(), st.floats()))
def test_never_raises_and_always_gives_a_known_status(raw):
    result = normalize_phones(raw)
    assert result.status in STATUSES
    assert all(number.startswith("+") for number in result.numbers)


@given(
    st.lists(mobiles, min_size=1, max_size=3).map("/".join)
    | st.text(alphabet="0123456789+-/ 、", max_size=30)
)
def test_normalising_the_canonical_output_again_gives_the_same_numbers(raw):
    result = normalize_phones(raw)
    if result.canonical is not None:
        again = normalize_phones(result.canonical)
        assert (again.numbers, again.mobiles, again.status) == (result.numbers, result.mobiles, "ok")
