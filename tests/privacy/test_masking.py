"""Display masks: recognisable to a person, never the whole identifier."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandbridge.privacy.masking import mask_id, mask_name, mask_phone


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张小伟", "张*伟"),
        ("张伟", "张*"),
        ("欧阳小伟", "欧**伟"),
        ("买买提·吐尔逊", "买*****逊"),
        ("张", "*"),
        ("", ""),
        (" 张 小 伟 ", "张*伟"),
    ],
)
def test_mask_name(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+86 138-0013-8000", "138****8000"),
        ("028-12345678", "028****5678"),
        (13800138000, "138****8000"),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [
        ("510104196812225052", "510104********5052"),
        ("51010419681222505x", "510104********505X"),
        ("510104 19681222 5052", "510104********5052"),
        ("510104681222505", "510104******505"),
    ],
)
def test_mask_id(id_number, masked):
    assert mask_id(id_number) == masked


@pytest.mark.parametrize("mask", [mask_name, mask_phone, mask_id])
def test_none_stays_none(mask):
    assert mask(None) is None


@pytest.mark.parametrize(
    ("mask", "garbage"),
    [
        (mask_phone, "call me"),
        (mask_phone, "12345"),
        (mask_id, "5101041968"),
        (mask_id, object()),
    ],
)
def test_garbage_is_masked_whole(mask, garbage):
    assert mask(garbage) == "***"


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_masked_mobile_hides_the_middle_four_digits(phone):
    masked = mask_phone(phone)
    assert masked == phone[:3] + "****" + phone[-4:]


@given(st.one_of(st.none(), st.text(), st.integers(), st.floats(), st.binary()))
def test_masks_are_total(value):
    for mask in (mask_name, mask_phone, mask_id):
        mask(value)
