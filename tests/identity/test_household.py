"""The household rules: an incident's reporter and a masked ID number against the persons of one flat.

Each rule is shown joining the case it is for and leaving apart the namesake case it must not merge.
No model link is given, so what joins is the rule alone. Every name and number is synthetic.
"""

from __future__ import annotations

import datetime as dt

from islandbridge.identity.clusters import build_clusters
from islandbridge.identity.deterministic import id_links
from tests.identity.strategies import pairs, record, table
from tests.identity.support import make_id

FLAT, NEXT_DOOR = "XQ001|3|2|501", "XQ001|3|2|502"
REGISTRY = "resident_registry/t_jm:current"
GRID = "grid_platform/residents"
ADULT_BY = "2010-11-20"  # an incident reporter is at least 16 on 2026-11-20


def _cluster(rows, links=()):
    records = table(rows)
    return build_clusters(records, id_links(records), pairs(list(links)))


def _resident(uid, name="王秀英", pinyin="wangxiuying", house=FLAT, **fields):
    return record(uid, name_key=name, pinyin_key=pinyin, house_key=house, scope=REGISTRY, **fields)


def _incident(uid, name="王秀英", pinyin="wangxiuying", house=FLAT, **fields):
    return record(
        uid, name_key=name, pinyin_key=pinyin, house_key=house, is_home=False, born_by=ADULT_BY, **fields
    )


def test_an_incident_joins_the_only_person_of_its_reporters_name_in_that_flat():
    rows = [
        _resident(0, birth="1950-03-02", sex="F", phones=["+8613800138000"]),
        record(1, name_key="王秀英", pinyin_key="wangxiuying", house_key=FLAT, phones=["+8613800138000"]),
        _resident(2, name="李强", pinyin="liqiang", birth="1948-07-01"),
        _incident(3),
    ]
    found = _cluster(rows, [(0, 1, 0.99)])
    assert found.cluster[3] == found.cluster[0] == found.cluster[1]
    assert found.cluster[2] != found.cluster[0]
    assert found.matched_by[3] == "reporter"


def test_an_incident_with_two_adult_namesakes_in_the_flat_joins_neither_and_is_reviewed():
    """Mother and daughter both 冯语嫣, both adults: the reporter could be either."""
    rows = [
        _resident(0, name="冯语嫣", pinyin="fengyuyan", birth="1970-01-11"),
        _resident(1, name="冯语嫣", pinyin="fengyuyan", birth="1996-10-22"),
        _incident(2, name="冯语嫣", pinyin="fengyuyan"),
    ]
    found = _cluster(rows)
    assert len(set(found.cluster)) == 3
    assert {(r.uid_l, r.uid_r, r.reason) for r in found.reviews} == {
        (0, 2, "several_namesakes"),
        (1, 2, "several_namesakes"),
    }


def test_a_homophone_in_the_flat_counts_as_a_second_person_of_that_name():
    """张伟 (a man, registry) and 章伟 (a woman, grid): an incident by 'zhangwei' could be either."""
    rows = [
        _resident(0, name="张伟", pinyin="zhangwei", birth="1970-01-11", sex="M"),
        record(1, name_key="章伟", pinyin_key="zhangwei", house_key=FLAT, scope=GRID, sex="F"),
        _incident(2, name="张伟", pinyin="zhangwei"),
    ]
    found = _cluster(rows)
    assert found.cluster[2] == 2 and found.cluster[0] != found.cluster[1]


def test_an_incident_never_joins_a_child_of_that_name():
    """The flat's only 冯语嫣 is ten: she did not report an incident."""
    rows = [_resident(0, name="冯语嫣", pinyin="fengyuyan", birth="2016-10-22"), _incident(1, name="冯语嫣")]
    found = _cluster(rows)
    assert found.cluster[1] == 1


def test_an_incident_whose_phone_is_another_persons_stays_apart():
    """The incident gives a number that the street knows as someone else's, not the namesake's."""
    rows = [
        _resident(0, birth="1950-03-02", phones=["+8613800138000"]),
        _resident(1, name="李强", pinyin="liqiang", house=NEXT_DOOR, phones=["+8613900139000"]),
        _incident(2, phones=["+8613900139000"]),
    ]
    found = _cluster(rows)
    assert found.cluster[2] == 2 and found.cluster[0] != found.cluster[1]


def test_an_incident_with_a_new_phone_still_joins():
    rows = [
        _resident(0, birth="1950-03-02", phones=["+8613800138000"]),
        _incident(1, phones=["+8613700137000"]),
    ]
    found = _cluster(rows)
    assert found.cluster[1] == 0


def test_an_incident_never_joins_a_namesake_of_another_flat():
    """Same estate, same name, next door: the incident's flat has nobody of that name."""
    rows = [_resident(0, house=NEXT_DOOR, birth="1950-03-02"), _incident(1)]
    found = _cluster(rows)
    assert found.cluster[1] == 1


def _masked_of(number: str) -> str:
    return number[:6] + number[-4:]


MOTHER = make_id(born=dt.date(1970, 1, 11), sequence=402)
DAUGHTER = make_id(born=dt.date(1996, 10, 22), sequence=404)


def test_a_masked_number_joins_the_flats_namesake_whose_full_number_shows_it():
    """Registry 冯语嫣 (full number), a door card 冯语嫣 (nothing else) and the grid's 冯语嫣 (masked): the
    card could be either, so the sole-namesake pass joins nothing; the masked number fits one only."""
    rows = [
        _resident(0, name="冯语嫣", pinyin="fengyuyan", id_full=DAUGHTER),
        record(1, name_key="冯语嫣", pinyin_key="fengyuyan", house_key=FLAT),
        record(
            2,
            name_key="冯语嫣",
            pinyin_key="fengyuyan",
            house_key=FLAT,
            scope=GRID,
            id_ps=_masked_of(DAUGHTER),
        ),
    ]
    found = _cluster(rows)
    assert found.cluster[2] == found.cluster[0] != found.cluster[1]
    assert found.matched_by[2] == "masked_id"


def test_a_masked_number_that_fits_no_namesake_of_the_flat_joins_nobody():
    other = make_id(born=dt.date(1996, 10, 22), sequence=406)
    rows = [
        _resident(0, name="冯语嫣", pinyin="fengyuyan", id_full=MOTHER),
        _resident(1, name="冯语嫣", pinyin="fengyuyan", id_full=DAUGHTER),
        record(
            2, name_key="冯语嫣", pinyin_key="fengyuyan", house_key=FLAT, scope=GRID, id_ps=_masked_of(other)
        ),
    ]
    found = _cluster(rows)
    assert len(set(found.cluster)) == 3


def test_a_masked_number_never_joins_a_namesake_in_another_flat():
    rows = [
        _resident(0, name="冯语嫣", pinyin="fengyuyan", id_full=DAUGHTER, house=NEXT_DOOR),
        record(
            1,
            name_key="冯语嫣",
            pinyin_key="fengyuyan",
            house_key=FLAT,
            scope=GRID,
            id_ps=_masked_of(DAUGHTER),
        ),
    ]
    found = _cluster(rows)
    assert found.cluster[1] == 1
