"""Synthetic values and Hypothesis strategies for the normaliser tests (no real person's data)."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st
from stdnum.cn import ric

REGIONS = ("110101", "310104", "440305", "510104", "511403", "650102")
HAN_NAME_CHARS = (
    "王李张章陈程刘杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧曾伟炜芳娜敏静丽强磊军洋勇艳杰娟佳欣怡"
)
TRADITIONAL_CHARS = "韓張陳劉楊黃趙吳孫馬羅鄭謝馮偉麗強軍傑"
ESTATE_CHARS = "锦江苑蜀南花园彭祖新城滨江岷江凤鸣观音长寿天府翠湖湾紫薇丽景华庭"


def make_id(region: str = "110101", born: dt.date = dt.date(1990, 3, 7), sequence: int = 1) -> str:
    """A checksum-valid 18-digit number for `region`, `born` and a three-digit `sequence`."""
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def make_legacy(region: str = "110101", born: dt.date = dt.date(1960, 5, 4), sequence: int = 1) -> str:
    """A first-generation 15-digit number (two-digit year, no check digit)."""
    return f"{region}{born:%y%m%d}{sequence:03d}"


valid_ids = st.builds(
    make_id,
    region=st.sampled_from(REGIONS),
    born=st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)),
    sequence=st.integers(0, 999),
)
legacy_ids = st.builds(
    make_legacy,
    region=st.sampled_from(REGIONS),
    born=st.dates(dt.date(1900, 1, 1), dt.date(1999, 12, 31)),
    sequence=st.integers(0, 999),
)


@st.composite
def messy_ids(draw) -> str:
    """A valid or legacy number as a source might type it: spaces, lower-case x, apostrophe, full width."""
    number = draw(st.one_of(valid_ids, legacy_ids))
    if draw(st.booleans()):
        number = number.lower()
    if draw(st.booleans()):
        number = f"{number[:6]} {number[6:14]} {number[14:]}"
    if draw(st.booleans()):
        number = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return draw(st.sampled_from(["", "'", " "])) + number + draw(st.sampled_from(["", " ", "\u3000"]))


mobiles = st.builds(
    lambda prefix, rest: f"{prefix}{rest:08d}",
    st.sampled_from(["130", "133", "138", "150", "159", "166", "177", "180", "186", "199"]),
    st.integers(0, 10**8 - 1),
)
han_names = st.text(alphabet=HAN_NAME_CHARS + TRADITIONAL_CHARS, min_size=2, max_size=4)
estate_names = st.text(alphabet=ESTATE_CHARS, min_size=2, max_size=6)
