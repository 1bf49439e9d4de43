"""Free-text scrubbing: numbers and known names out, ordinary text untouched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandbridge.privacy.scrub import Scrubber, scrub, scrub_many

NAMES = ["张小伟", "张伟", "欧阳娜娜", "王芳"]


@pytest.mark.parametrize(
    "phone",
    [
        "13800138000",
        "138-0013-8000",
        "+86 13800138000",
        "138 0013 8000",
        "+86-138-0013-8000",
        "(+86)13800138000",
        "0086 13800138000",
        "8613800138000",
        "１３８００１３８０００",
    ],
)
def test_mobile_numbers_in_every_format_are_removed(phone):
    assert scrub(f"联系电话{phone}，请回电") == "联系电话[电话]，请回电"


@pytest.mark.parametrize("phone", ["028-12345678", "(028)12345678", "0816-2345678", "028-87654321-801"])
def test_landlines_with_area_code_are_removed(phone):
    assert scrub(f"座机 {phone} 值班") == "座机 [电话] 值班"


@pytest.mark.parametrize(
    "id_number",
    [
        "510104196812225052",
        "51010419450101002X",
        "51010419450101002x",
        "510104 19681222 5052",
        "5101 0419 6812 2250 52",
        "510104681222505",
    ],
)
def test_id_numbers_are_removed(id_number):
    assert scrub(f"身份证号:{id_number}。") == "身份证号:[证件号]。"


@pytest.mark.parametrize(
    "card",
    [
        "6222021234567890",
        "6222021234567890123",
        "6222 0212 3456 7890",
        "6222-0212-3456-7890-123",
    ],
)
def test_bank_cards_are_removed(card):
    assert scrub(f"补贴打入{card}账户") == "补贴打入[银行卡]账户"


def test_known_names_are_removed_longest_first():
    assert scrub("张小伟和张伟、欧阳娜娜同住", NAMES) == "[姓名]和[姓名]、[姓名]同住"


def test_one_character_names_are_not_used():
    assert scrub("王大爷住3楼", ["王"]) == "王大爷住3楼"


def test_everything_in_one_note():
    text = "王芳(身份证51010419450101002X)反映邻居张伟电话138 0013 8000长期未接，卡号6222021234567890"
    assert scrub(text, NAMES) == "[姓名](身份证[证件号])反映邻居[姓名]电话[电话]长期未接，卡号[银行卡]"


@pytest.mark.parametrize(
    "text",
    [
        "3号楼2单元501室楼道灯不亮，2024-05-01报修。",
        "本月发放金额1234.50元，共计12户，编号20240501123。",
        "会议时间 14:30，地点 A-301，参加人数 25 人。",
        "订单号 123456789012，邮编 610041。",
        "The lift in building 7 has been broken since 2026-11-19.",
    ],
)
def test_ordinary_text_is_left_intact(text):
    assert scrub(text, NAMES) == text


def test_numbers_next_to_a_phone_do_not_hide_it():
    assert scrub("电话13800138000 18岁") == "电话[电话] 18岁"


def test_none_stays_none_and_other_values_are_scrubbed_as_text():
    assert scrub(None) is None
    assert scrub(13800138000) == "[电话]"


@given(st.text(max_size=200), st.lists(st.text(max_size=6), max_size=20))
def test_scrub_never_raises(text, names):
    assert isinstance(scrub(text, names), str)


@given(
    prefix=st.text(alphabet="居民反映楼道灯不亮请尽快处理，。 ", max_size=20),
    phone=st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
    suffix=st.text(alphabet="居民反映楼道灯不亮请尽快处理，。 ", max_size=20),
)
def test_a_mobile_anywhere_in_text_is_removed(prefix, phone, suffix):
    assert phone not in scrub(prefix + phone + suffix)


def test_scrubber_and_scrub_many_agree_with_scrub():
    texts = ["王芳 13800138000", None, "无"]
    assert scrub_many(texts, NAMES) == [Scrubber(NAMES)(t) for t in texts] == [scrub(t, NAMES) for t in texts]
