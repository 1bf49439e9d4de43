"""Display masks: recognisable to a person, never the whole identifier."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandbridge.privacy.masking import mask_id, mask_name, mask_phone, mask_typed


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


# What an operator may type by mistake, and how an error repeats it: masked as `explain` shows values.
TYPED = {
    "511403194310287757": "511403********7757",
    "秦光明": "秦*明",
    "18798377461": "187****7461",
    "+86 187-9837-7461": "187****7461",
    "6222 0212 3456 7890": "***",
    "511403194310287757~x": "511403********7757~x",
    "resident_registry/秦光明": "resident_registry/秦*明",
    "dibao:202610:511403194310287757": "dibao:202610:511403********7757",
    "note id511403194310287757": "note id[证件号]",
    "Could not convert string '秦光明' to INT32": "Could not convert string '秦*明' to INT32",
}


@pytest.mark.parametrize(("typed", "shown"), TYPED.items())
def test_a_typed_argument_is_masked_like_a_shown_value(typed, shown):
    assert mask_typed(typed) == shown


@pytest.mark.parametrize(
    "typed",
    [
        "resident_registry/t_jm:100345",
        "grid_platform/events:EV2026070600003",
        "pk_3f9a0c2b",
        "ib_20261120T160000Z",
        "dibao:202611:[证件号]~3f9a",
        "3f9a0c2b1d",
    ],
)
def test_keys_and_ids_pass_as_typed(typed):
    assert mask_typed(typed) == typed
