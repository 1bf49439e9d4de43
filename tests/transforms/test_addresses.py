"""Addresses: the SPEC's styles, estate resolution, registry/IoT house columns and the house key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandbridge.transforms.normalize.addresses import (
    STATUSES,
    EstateIndex,
    HouseParts,
    estate_key,
    house_key,
    normalize_house,
    parse_address,
)
from tests.transforms.strategies import estate_names

KNOWN = {"锦江苑": "XQ001", "滨江小区": "XQ004", "观音安置小区": "XQ007"}
SPEC_STYLES = [
    "锦江苑3栋2单元501室",
    "锦江苑3-2-501",
    "锦江苑小区3幢2单元501号",
    "眉山市彭山区锦江苑3栋2单元501",
    "3栋2单元501",
]


@pytest.mark.parametrize(
    "raw", SPEC_STYLES + ["锦江苑３栋２单元５０１", "锦江苑3栋2单元0501", "锦江苑 3 栋 2 单元 501 室"]
)
def test_every_style_gives_building_unit_and_room(raw):
    result = parse_address(raw)
    assert (result.building, result.unit, result.room) == ("3", "2", "501")


@pytest.mark.parametrize("raw", SPEC_STYLES[:4])
def test_every_style_with_an_estate_resolves_to_the_same_house(raw):
    result = parse_address(raw, KNOWN)
    assert (result.estate_code, result.estate_name, result.status) == ("XQ001", "锦江苑", "ok")
    assert result.house_key == "XQ001|3|2|501"


def test_address_without_estate_is_partial_and_says_why():
    result = parse_address("3栋2单元501", KNOWN)
    assert (result.estate_name, result.estate_code, result.status) == (None, None, "partial")
    assert result.reason == "no estate name"


@pytest.mark.parametrize(
    "raw", ["滨江小区7-1-902", "滨江小区小区7幢1单元902号", "眉山市彭山区滨江小区7栋1单元902"]
)
def test_estate_whose_name_ends_in_xiaoqu_resolves_in_every_style(raw):
    result = parse_address(raw, KNOWN)
    assert (result.estate_code, result.estate_name, result.estate_key) == ("XQ004", "滨江小区", "滨江")


def test_all_administrative_levels_in_front_are_stripped():
    result = parse_address("四川省眉山市彭山区凤鸣街道凤鸣社区锦江苑3号楼2单元501室")
    assert (result.estate_name, result.building, result.unit, result.room) == ("锦江苑", "3", "2", "501")


def test_road_and_number_in_front_are_stripped():
    assert parse_address("凤鸣路12号锦江苑3栋2单元501室", KNOWN).estate_code == "XQ001"


def test_chinese_numerals_for_building_and_unit_are_read():
    assert parse_address("锦江苑十二栋二单元501室")[3:6] == ("12", "2", "501")


def test_unknown_estate_is_partial_and_not_guessed_from_a_similar_name():
    result = parse_address("新锦江苑3-2-501", KNOWN)
    assert (result.estate_code, result.status, result.reason) == (
        None,
        "partial",
        "estate not among the known estates",
    )


def test_estate_claimed_by_two_codes_is_not_resolved():
    index = EstateIndex({"锦江苑": "XQ001", "锦江苑小区": "XQ009"})
    assert index.ambiguous == {"锦江苑"}
    assert parse_address("锦江苑3-2-501", index).estate_code is None


def test_indexes_built_from_the_same_estates_are_equal():
    assert EstateIndex(dict(KNOWN)) == EstateIndex(KNOWN) != EstateIndex({"锦江苑": "XQ002"})


def test_without_known_estates_the_estate_key_still_matches_across_styles():
    keys = {parse_address(raw).estate_key for raw in SPEC_STYLES[:4]}
    assert keys == {"锦江苑"}


def test_estate_only_text_is_partial_without_house_parts():
    result = parse_address("锦江苑", KNOWN)
    assert (result.estate_code, result.building, result.status) == ("XQ001", None, "partial")


@pytest.mark.parametrize("raw", [None, "", "  ", "无"])
def test_empty_values_are_missing(raw):
    assert parse_address(raw).status == "missing"


@pytest.mark.parametrize("raw", ["abc", "12345", "???", 501])
def test_unreadable_values_are_invalid(raw):
    assert parse_address(raw).status == "invalid"


@pytest.mark.parametrize(
    ("ld", "dy", "fh"),
    [
        ("3", "2", "501"),
        ("3栋", "2", "0501"),
        (3, 2, 501),
        ("03", "02单元", "501室"),
        ("３幢", "２", "０５０１"),
    ],
)
def test_registry_and_iot_columns_normalise_to_the_same_parts(ld, dy, fh):
    assert normalize_house(ld, dy, fh) == HouseParts("3", "2", "501")


def test_registry_house_and_parsed_address_share_the_house_key():
    assert (
        house_key("XQ001", "3栋", "2", "0501")
        == parse_address("锦江苑3-2-501", KNOWN).house_key
        == "XQ001|3|2|501"
    )


def test_building_door_without_room_has_no_house_key():
    assert normalize_house("11", "1", None) == HouseParts("11", "1", None)
    assert house_key("XQ002", "11", "1", None) is None


def test_estate_key_drops_the_xiaoqu_suffix():
    assert estate_key("观音安置小区小区") == estate_key("观音安置小区") == "观音安置"


@given(st.one_of(st.none(), st.text(), st.integers()), st.sampled_from([None, KNOWN]))
def test_never_raises_and_always_gives_a_known_status(raw, known):
    assert parse_address(raw, known).status in STATUSES


@given(st.text(), st.text(), st.text(), st.text())
def test_house_helpers_never_raise(code, ld, dy, fh):
    normalize_house(ld, dy, fh)
    house_key(code, ld, dy, fh)


@given(
    estate_names,
    st.integers(1, 40),
    st.integers(1, 9),
    st.integers(101, 3404),
    st.sampled_from(
        ["{e}{b}栋{u}单元{r}室", "{e}{b}-{u}-{r}", "{e}小区{b}幢{u}单元0{r}号", "眉山市{e}{b}栋{u}单元{r}"]
    ),
)
def test_parsing_the_canonical_form_again_gives_the_same_result(estate, b, u, r, style):
    result = parse_address(style.format(e=estate, b=b, u=u, r=r))
    assert (result.building, result.unit, result.room) == (str(b), str(u), str(r))
    assert parse_address(result.canonical) == result


@given(estate_names, st.integers(1, 40), st.integers(1, 9), st.integers(101, 3404))
def test_reasons_never_quote_the_address(estate, b, u, r):
    reason = parse_address(f"{estate}{b}栋{u}单元{r}", KNOWN).reason or ""
    assert estate not in reason and str(r) not in reason
