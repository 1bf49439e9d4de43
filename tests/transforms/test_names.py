"""Names: padding, traditional characters, pinyin-input typos, minority names, compound surnames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandbridge.transforms.normalize.names import STATUSES, normalize_name
from tests.transforms.strategies import han_names


@pytest.mark.parametrize("padded", ["陈  佳", "陈\u3000佳", " 陈佳 ", "陈佳\u3000", "陈 \t佳"])
def test_padding_inside_and_around_a_name_is_removed(padded):
    assert normalize_name(padded) == normalize_name("陈佳")
    assert normalize_name(padded).name_key == "陈佳"


def test_traditional_characters_become_simplified():
    assert normalize_name("韓彬").name_key == "韩彬"
    assert normalize_name("張偉").name_key == "张伟"


@pytest.mark.parametrize(("typed", "meant"), [("章伟", "张伟"), ("张炜", "张伟"), ("呂萍", "吕萍")])
def test_pinyin_input_typos_share_the_pinyin_key(typed, meant):
    assert normalize_name(typed).pinyin_key == normalize_name(meant).pinyin_key


def test_homophones_keep_distinct_name_keys():
    assert normalize_name("章伟").name_key != normalize_name("张伟").name_key


def test_pinyin_key_is_toneless_and_joined():
    result = normalize_name("张伟")
    assert (result.pinyin_key, result.surname_pinyin, result.given_pinyin) == ("zhangwei", "zhang", "wei")


@pytest.mark.parametrize("separator", ["·", "•", "．", "・", ".", "-", "－", " · "])
def test_separator_variants_of_minority_names_become_a_middle_dot(separator):
    result = normalize_name(f"阿卜杜拉{separator}买买提")
    assert result.name_key == "阿卜杜拉·买买提"
    assert result.pinyin_key == normalize_name("阿卜杜拉买买提").pinyin_key
    assert (result.surname_pinyin, result.given_pinyin) == (None, None)


def test_compound_surname_is_split_after_two_characters():
    result = normalize_name("欧阳娜娜")
    assert (result.surname_pinyin, result.given_pinyin) == ("ouyang", "nana")


def test_two_character_name_starting_like_a_compound_surname_splits_after_one():
    assert normalize_name("欧阳").surname_pinyin == "ou"


@pytest.mark.parametrize("raw", [None, "", "   ", "无", "無", "NULL", "不详"])
def test_empty_values_are_missing(raw):
    assert normalize_name(raw).status == "missing"


@pytest.mark.parametrize("raw", ["abc", "Zhang Wei", "王1", "12345", "王", "张?", 42])
def test_digits_latin_and_fragments_are_invalid_with_no_keys(raw):
    result = normalize_name(raw)
    assert (result.status, result.name_key, result.pinyin_key) == ("invalid", None, None)
    assert result.reason


@given(st.one_of(st.none(), st.text(), st.integers()))
def test_never_raises_and_always_gives_a_known_status(raw):
    result = normalize_name(raw)
    assert result.status in STATUSES
    assert (result.name_key is not None) == (result.status == "ok")


@given(st.one_of(han_names, han_names.map(lambda n: f"{n[0]}  {n[1:]}"), st.text(max_size=8)))
def test_normalising_the_name_key_again_gives_the_same_result(raw):
    result = normalize_name(raw)
    if result.name_key is not None:
        assert normalize_name(result.name_key) == result
