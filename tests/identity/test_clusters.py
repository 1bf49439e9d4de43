"""Clustering under hard constraints: what may never be merged, and what goes to review."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity.clusters import Profile, build_clusters, conflict, identity_evidence
from islandbridge.identity.deterministic import id_links
from islandbridge.identity.probabilistic import has_identity_evidence, pair_evidence
from tests.identity.strategies import IDS, pairs, record, record_rows, scored_links, table
from tests.identity.support import make_id


def _cluster(rows, links):
    records = table(rows)
    return build_clusters(records, id_links(records), pairs(links))


def _reasons(found) -> set[str]:
    return {r.reason for r in found.reviews}


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_no_cluster_ever_holds_two_valid_id_numbers(data):
    """Whatever the scores, a person never carries two different valid full ID numbers."""
    rows = data.draw(record_rows())
    found = _cluster(rows, data.draw(scored_links(len(rows))))
    numbers = defaultdict(set)
    for row, cluster in zip(rows, found.cluster, strict=True):
        if row["id_full"]:
            numbers[cluster].add(row["id_full"])
    assert all(len(n) == 1 for n in numbers.values())


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_equal_id_numbers_are_always_one_person(data):
    """Records with the same valid full ID number always end in the same cluster."""
    rows = data.draw(record_rows())
    found = _cluster(rows, data.draw(scored_links(len(rows))))
    by_id = defaultdict(set)
    for row, cluster in zip(rows, found.cluster, strict=True):
        if row["id_full"]:
            by_id[row["id_full"]].add(cluster)
    assert all(len(c) == 1 for c in by_id.values())


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_pair_evidence_and_conflict_are_symmetric(data):
    """match(a, b) == match(b, a) for the pair reading and for the cluster conflict test."""
    a, b = data.draw(record_rows(max_size=2))[:2]
    assert pair_evidence(a, b) == pair_evidence(b, a)
    pa_, pb = (
        Profile(
            r["id_full"],
            r["id_ps"],
            r["birth"],
            r["birth_ym"],
            r["sex"],
            frozenset([r["scope"]]) if r["scope"] else frozenset(),
            r["born_by"],
        )
        for r in (a, b)
    )
    assert conflict(pa_, pb) == conflict(pb, pa_)


@settings(max_examples=100, deadline=None)
@given(rows=record_rows())
def test_bulk_identity_evidence_agrees_with_the_pair_reading(rows):
    """The vectorised screen reads every pair exactly as `pair_evidence` does."""
    left, right = (
        np.array([a for a in range(len(rows)) for b in range(len(rows)) if a != b]),
        np.array([b for a in range(len(rows)) for b in range(len(rows)) if a != b]),
    )
    bulk = identity_evidence(table(rows), left, right).tolist()
    assert bulk == [
        has_identity_evidence(pair_evidence(rows[a], rows[b])) for a, b in zip(left, right, strict=True)
    ]


def test_a_shared_phone_and_flat_alone_never_link():
    """Two names sharing a phone and a flat stay two people, however high the score; the pair is reviewed."""
    rows = [
        record(0, name_key="张伟", phones=["+8613800138000"], house_key="XQ001|1|1|101"),
        record(1, name_key="李娜", phones=["+8613800138000"], house_key="XQ001|1|1|101"),
    ]
    found = _cluster(rows, [(0, 1, 0.9999)])
    assert found.cluster[0] != found.cluster[1]
    assert _reasons(found) == {"no_identity_evidence"}


def test_a_chain_of_links_cannot_join_two_id_numbers():
    """A record linked to two people with different numbers joins at most one; the other link is reviewed."""
    rows = [
        record(0, name_key="张伟", id_full=IDS[0]),
        record(1, name_key="张伟"),
        record(2, name_key="张伟", id_full=IDS[1]),
    ]
    found = _cluster(rows, [(0, 1, 0.9999), (1, 2, 0.999)])
    assert found.cluster[0] != found.cluster[2]
    assert "different_id" in _reasons(found) or "ambiguous" in _reasons(found)


def test_a_record_matching_two_rival_persons_equally_joins_neither():
    """Mother and daughter share name, phone and flat: a card holder with no more than that is ambiguous."""
    common = {"name_key": "王芳", "phones": ["+8613800138000"], "house_key": "XQ001|1|1|101"}
    rows = [record(0, **common, id_full=IDS[0]), record(1, **common, id_full=IDS[2]), record(2, **common)]
    found = _cluster(rows, [(0, 2, 0.9995), (1, 2, 0.9995)])
    assert len(set(found.cluster)) == 3
    assert _reasons(found) >= {"ambiguous"}


def test_a_record_that_cannot_choose_between_two_persons_joins_no_weaker_third():
    """热依拉·吐尔逊, mother and daughter, one flat: a card holder shares name, phone and flat with the
    daughter's registry row and her grid record and with the mother's grid record, and only name and
    flat with the mother's registry row, which lacks the phone. The strong links are ambiguous; the weak
    one to the mother's row (more than the margin below them) is no better evidence, and is not taken."""
    flat, phone = "XQ001|1|1|101", ["+8613800138000"]
    common = {"name_key": "王芳", "house_key": flat}
    mother, daughter = make_id(born=dt.date(1975, 8, 22)), make_id(born=dt.date(2017, 10, 24))
    rows = [
        record(0, **common, id_full=mother),  # the mother's registry row, no phone
        record(1, **common, id_full=daughter, phones=phone),  # the daughter's registry row
        record(2, **common, id_ps=mother[:6] + mother[-4:], phones=phone),  # the mother's grid record
        record(3, **common, id_ps=daughter[:6] + daughter[-4:], phones=phone),  # the daughter's
        record(4, **common, phones=phone),  # a door card: either of them
    ]
    strong, weak = 0.999999, 0.99
    found = _cluster(rows, [(1, 4, strong), (2, 4, strong), (3, 4, strong), (0, 4, weak), (0, 2, strong)])
    assert found.cluster[4] == 4
    assert found.cluster[0] == found.cluster[2] and found.cluster[1] != found.cluster[0]


def test_two_records_of_one_roster_stay_two_people():
    """The grid's 台账 lists each person once: two of its records never merge."""
    rows = [
        record(0, name_key="张伟", scope="grid_platform/residents", house_key="XQ001|1|1|101"),
        record(1, name_key="张伟", scope="grid_platform/residents", house_key="XQ001|1|1|101"),
    ]
    found = _cluster(rows, [(0, 1, 0.9999)])
    assert found.cluster[0] != found.cluster[1]
    assert _reasons(found) == {"same_roster"}


def test_an_adult_only_record_never_joins_a_baby():
    """A door-card holder (8 or older) never joins a person born last year."""
    rows = [
        record(0, name_key="王芳", birth="2025-05-10", house_key="XQ001|1|1|101"),
        record(1, name_key="王芳", born_by="2018-11-21", house_key="XQ001|1|1|101"),
    ]
    found = _cluster(rows, [(0, 1, 0.9999)])
    assert found.cluster[0] != found.cluster[1]
    assert _reasons(found) == {"too_young"}


def test_a_month_of_birth_alone_keeps_an_adult_only_record_from_a_child():
    """The same with only a 出生年月 on the young side (no full birth date anywhere in the component): the
    component may conflict, so it is resolved pair by pair, not linked whole."""
    rows = [
        record(0, name_key="张伟", born_by="2018-12-06"),
        record(1, name_key="张伟", birth_ym="2020-03"),
    ]
    found = _cluster(rows, [(0, 1, 0.999)])
    assert found.cluster[0] != found.cluster[1]
    assert _reasons(found) == {"too_young"}


def test_a_pair_below_the_threshold_is_reviewed_not_linked():
    """Near misses are recorded for review with their probability."""
    rows = [record(0, name_key="张伟"), record(1, name_key="张伟")]
    found = _cluster(rows, [(0, 1, 0.8)])
    assert found.cluster[0] != found.cluster[1]
    assert [(r.reason, r.match_probability) for r in found.reviews] == [("below_threshold", 0.8)]


def test_masked_number_consistent_with_a_full_one_is_identity_evidence():
    """A vendor-masked number whose prefix and last four agree is evidence; a disagreeing one is not."""
    full = record(0, name_key="张伟", id_full=IDS[0])
    same = record(1, id_ps=IDS[0][:6] + IDS[0][-4:])
    other = record(2, id_ps=IDS[1][:6] + IDS[1][-4:])
    assert has_identity_evidence(pair_evidence(full, same))
    assert pair_evidence(full, other).id == "different"


# -- sole namesakes -------------------------------------------------------------------------------------------

FLAT, OTHER_FLAT = "XQ001|1|1|101", "XQ001|1|1|102"
REGISTRY = "resident_registry/t_jm:current"


def _resident(uid, **fields):
    return record(uid, scope=REGISTRY, house_key=FLAT, community="凤鸣社区", **fields)


def test_a_card_holder_with_a_homophone_name_joins_the_flats_only_resident_of_that_name():
    """余永虹 on the card, 余永红 in the registry, nothing else shared: she is the flat's only 'yuyonghong'."""
    rows = [
        _resident(0, name_key="余永红", pinyin_key="yuyonghong", sex="F", birth="1932-03-23"),
        record(1, name_key="余永虹", pinyin_key="yuyonghong", house_key=FLAT, phones=["+8613973524057"]),
    ]
    found = _cluster(rows, [(0, 1, 0.93)])
    assert found.cluster[0] == found.cluster[1]
    assert found.matched_by == ["namesake", "namesake"]
    assert found.reviews == []


def test_a_card_holder_stays_apart_where_the_registry_lists_two_of_that_name():
    """Two living 冯语嫣 in one flat: a card in that name could be either's."""
    rows = [
        _resident(0, name_key="冯语嫣", pinyin_key="fengyuyan", birth="2017-01-11"),
        _resident(1, name_key="冯语嫣", pinyin_key="fengyuyan", birth="2026-10-22"),
        record(2, name_key="封语嫣", pinyin_key="fengyuyan", house_key=FLAT),
    ]
    found = _cluster(rows, [(0, 2, 0.9), (1, 2, 0.9)])
    assert len(set(found.cluster)) == 3
    assert "namesake" not in found.matched_by


def test_two_unregistered_namesakes_in_one_flat_stay_apart():
    """No registry resident lists the flat's people: a grid record and a card of one name may be two."""
    rows = [
        record(
            0, name_key="尹皓轩", pinyin_key="yinhaoxuan", house_key=FLAT, scope="grid_platform/residents"
        ),
        record(1, name_key="尹皓轩", pinyin_key="yinhaoxuan", house_key=FLAT),
    ]
    found = _cluster(rows, [(0, 1, 0.93)])
    assert found.cluster[0] != found.cluster[1]


def test_namesakes_that_contradict_each_other_stay_apart():
    """The only two 'zhangwei' of the flat, but of different sexes."""
    rows = [_resident(0, name_key="张伟", sex="M"), record(1, name_key="章伟", house_key=FLAT, sex="F")]
    found = _cluster(rows, [(0, 1, 0.9)])
    assert found.cluster[0] != found.cluster[1]


def test_a_senior_roster_row_joins_the_communitys_only_resident_of_that_name():
    """A 高龄补贴 row gives name, sex, birth month and community only; the registry row gives no birth date."""
    senior = record(
        1,
        name_key="宋建华",
        pinyin_key="songjianhua",
        sex="M",
        birth_ym="1944-10",
        community="凤鸣社区",
        born_by="1947-11-21",
    )
    rows = [_resident(0, name_key="宋建华", pinyin_key="songjianhua", sex="M"), senior]
    assert _cluster(rows, []).cluster == [0, 0]
    # A second 宋建华 living in another flat of the community: the row could be either's.
    rows.append(
        record(
            2,
            name_key="宋建华",
            pinyin_key="songjianhua",
            sex="M",
            scope=REGISTRY,
            house_key=OTHER_FLAT,
            community="凤鸣社区",
        )
    )
    assert len(set(_cluster(rows, []).cluster)) == 3


def test_two_addressed_namesakes_of_a_community_stay_apart():
    """In a community, only a record without any address joins; an incident's reporter is placed by it."""
    reporter = record(
        1,
        name_key="吕晓东",
        pinyin_key="lvxiaodong",
        house_key=OTHER_FLAT,
        community="凤鸣社区",
        is_home=False,
    )
    rows = [_resident(0, name_key="吕晓东", pinyin_key="lvxiaodong", sex="M", birth="1974-04-06"), reporter]
    assert len(set(_cluster(rows, []).cluster)) == 2
    rows[1] = {**reporter, "house_key": None, "room_key": None}
    assert len(set(_cluster(rows, []).cluster)) == 2


def test_a_roster_row_joins_the_only_namesake_it_is_compatible_with():
    """Three 卢玉梅 in the community; two have birth dates that are not the roster row's: the third is hers."""
    rows = [
        _resident(0, name_key="卢玉梅", pinyin_key="luyumei", sex="F", birth="1940-09-03"),
        record(
            1,
            name_key="卢玉梅",
            pinyin_key="luyumei",
            sex="F",
            birth="1958-08-22",
            scope=REGISTRY,
            house_key=OTHER_FLAT,
            community="凤鸣社区",
        ),
        record(
            2,
            name_key="卢玉梅",
            pinyin_key="luyumei",
            sex="F",
            scope=REGISTRY,
            house_key="XQ001|1|1|103",
            community="凤鸣社区",
        ),
        record(
            3,
            name_key="卢玉梅",
            pinyin_key="luyumei",
            sex="F",
            birth_ym="1945-10",
            community="凤鸣社区",
            born_by="1947-11-21",
        ),
    ]
    found = _cluster(rows, [])
    assert found.cluster == [0, 1, 2, 2]
    # A fourth 卢玉梅 without a birth date anywhere in the community: two could be hers.
    rows.append(
        record(4, name_key="卢玉梅", pinyin_key="luyumei", house_key="XQ001|1|1|104", community="凤鸣社区")
    )
    assert len(set(_cluster(rows, []).cluster)) == 5


def test_a_roster_row_with_two_compatible_namesakes_is_reviewed_against_each():
    """Two 宋建华 without birth dates live in the community: the row joins neither, and a person is asked."""
    senior = record(
        2,
        name_key="宋建华",
        pinyin_key="songjianhua",
        sex="M",
        birth_ym="1944-10",
        community="凤鸣社区",
        born_by="1947-11-21",
    )
    rows = [
        _resident(0, name_key="宋建华", pinyin_key="songjianhua", sex="M"),
        record(
            1,
            name_key="宋建华",
            pinyin_key="songjianhua",
            sex="M",
            scope=REGISTRY,
            house_key=OTHER_FLAT,
            community="凤鸣社区",
        ),
        senior,
    ]
    found = _cluster(rows, [])
    assert len(set(found.cluster)) == 3
    assert [(r.uid_l, r.uid_r, r.match_probability, r.reason) for r in found.reviews] == [
        (0, 2, None, "several_namesakes"),
        (1, 2, None, "several_namesakes"),
    ]
