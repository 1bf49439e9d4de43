"""`privacy.pinyin.scrub_pinyin`: a person's name typed in pinyin, as people type it, is scrubbed."""

from __future__ import annotations

import pytest

from islandbridge.privacy.pinyin import scrub_pinyin


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("visit Zhang Xiaowei", "张小伟"),
        ("visit Xiao-Wei ZHANG", "张小伟"),
        ("visit zhāng xiǎowěi", "张小伟"),
        ("visit zhang1 xiao3wei3", "张小伟"),
        ("visit Lü Xiaowei", "吕小伟"),
        ("visit Lv Xiaowei", "吕小伟"),
        ("visit Lu Xiaowei", "吕小伟"),
        ("visit LYU XIAOWEI", "吕小伟"),  # the passport spelling of ü after l and n
        ("visit Nyu Ying", "女英"),
        ("visit Lyue Fei", "略飞"),
    ],
)
def test_a_name_typed_in_pinyin_is_scrubbed(text, name):
    assert scrub_pinyin(text, [name]) == "visit [姓名]"


def test_other_words_and_a_surname_alone_stay():
    assert scrub_pinyin("Mr Lyu came, you and Lu too", ["吕小伟"]) == "Mr Lyu came, you and Lu too"
