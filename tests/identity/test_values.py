"""Reading single values for matching: the century of a legacy 15-digit ID number."""

from __future__ import annotations

import datetime as dt

from islandbridge.identity.values import legacy_century
from islandbridge.transforms.normalize import normalize_id
from tests.identity.support import make_id

AS_OF = dt.datetime(2026, 11, 20)


def _upgraded(born: dt.date) -> tuple[str, str]:
    """(the 19yy upgrade of a 15-digit number, the 18-digit number of someone born ``born``)."""
    real = make_id(born=born, sequence=517)
    legacy = real[:6] + real[8:17]
    return normalize_id(legacy).value, real


def test_a_childs_legacy_number_is_read_in_its_declared_century():
    upgraded, real = _upgraded(dt.date(2012, 1, 8))
    assert upgraded[6:8] == "19"
    assert legacy_century(upgraded, "2012-01-08", AS_OF) == real


def test_a_declared_birth_in_the_1900s_keeps_the_standard_upgrade():
    upgraded, real = _upgraded(dt.date(1912, 1, 8))
    assert legacy_century(upgraded, "19120108", AS_OF) == upgraded == real


def test_without_a_declared_birth_a_holder_of_a_hundred_or_more_is_read_as_born_in_the_2000s():
    upgraded, real = _upgraded(dt.date(2016, 10, 22))
    assert legacy_century(upgraded, None, AS_OF) == real


def test_without_a_declared_birth_an_adult_keeps_the_standard_upgrade():
    upgraded, real = _upgraded(dt.date(1960, 4, 9))
    assert legacy_century(upgraded, None, AS_OF) == upgraded == real


def test_a_declared_birth_on_another_day_keeps_the_standard_upgrade():
    """The record contradicts itself; the century is not guessed from it."""
    upgraded, _ = _upgraded(dt.date(2012, 1, 8))
    assert legacy_century(upgraded, "2012-03-08", AS_OF) == upgraded
