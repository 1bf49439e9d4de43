"""Which identifier a report shows when the source records disagree, and how it is shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from islandbridge.delivery.export import display_identifier, pick_identifier
from islandbridge.privacy.vault import VaultValue

SYSTEMS = ["resident_registry", "civil_affairs", "grid_platform", "iot_platform", "new_system"]


def value(system, record_key, text):
    return VaultValue(system, record_key, text, "v1")


def test_the_registry_wins_over_every_other_system():
    values = [
        value("iot_platform", "cardholders:H9", "王五"),
        value("grid_platform", "residents:GP9", "王伍"),
        value("civil_affairs", "senior:202611:9", "王午"),
        value("resident_registry", "t_jm:1", "王武"),
    ]
    assert pick_identifier("name", values) == "王武"
    assert pick_identifier("name", values[:3]) == "王午"
    assert pick_identifier("name", values[:2]) == "王伍"


def test_an_unknown_system_comes_last():
    values = [value("new_system", "x:1", "王五"), value("iot_platform", "cardholders:H9", "王伍")]
    assert pick_identifier("name", values) == "王伍"


def test_within_a_system_the_greatest_record_key_wins_in_natural_order():
    values = [
        value("resident_registry", "t_jm:99999", "旧名"),
        value("resident_registry", "t_jm:100010", "新名"),
    ]
    assert pick_identifier("name", values) == "新名"


def test_unusable_values_do_not_compete():
    values = [
        value("resident_registry", "t_jm:2", "5.11403E+17"),
        value("resident_registry", "t_jm:1", "无"),
        value("civil_affairs", "dibao:202611:33", "511421199105155128"),
    ]
    assert pick_identifier("id_number", values) == "511421199105155128"
    assert pick_identifier("id_number", values[:2]) is None
    assert pick_identifier("name", []) is None


@given(st.permutations([value(s, f"k:{n}", f"名{n}{s[0]}") for s in SYSTEMS for n in (1, 2, 10)]))
def test_the_choice_does_not_depend_on_the_order_of_the_records(values):
    assert pick_identifier("name", values) == "名10r"


@pytest.mark.parametrize(
    ("field", "raw", "shown"),
    [
        ("id_number", "511421199105155128", "511421199105155128"),
        ("id_number", "'51142119440427524x", "51142119440427524X"),
        ("id_number", "511403450101505", "51140319450101505X"),  # first-generation number, upgraded
        ("id_number", "E12345678", "E12345678"),
        ("id_number", "510104********0696", None),
        ("id_number", "511403194510310078", None),  # check digit wrong: a typo, not this person's number
        ("phone", "+86 138-0013-8000", "13800138000"),
        ("phone", "028-12345678", "02812345678"),
        ("phone", "15658881440/13118791697", "15658881440/13118791697"),
        ("phone", "暂无", None),
        ("birth_date", "19451031", "1945-10-31"),
        ("birth_date", "1945-10-31", "1945-10-31"),
        ("birth_date", "1945.10", "1945-10"),
        ("birth_date", "1945-13-40", None),
        ("name", " 陈  佳 ", "陈佳"),
        ("name", "无", None),
        ("name", None, None),
    ],
)
def test_display_identifier(field, raw, shown):
    assert display_identifier(field, raw) == shown
