"""The sole-namesake pass decides only the community groups that hold a person without an address."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity.namesakes import _namesake_groups, join_sole_namesakes
from tests.identity.strategies import record, record_rows, table

COMMUNITIES = ["凤鸣社区", "龙泉社区"]
FLATS = ["XQ001|1|1|101", "XQ001|1|1|102", "XQ002|3|1|201"]


@st.composite
def _street(draw, max_size: int = 14):
    """Records of a few names (`strategies.record_rows`) across two communities, some with no address at
    all, some not a home, and a clustering of them (each cluster labelled by its smallest uid)."""
    rows = draw(record_rows(max_size=max_size))
    for row in rows:
        row["community"] = draw(st.one_of(st.none(), st.sampled_from(COMMUNITIES)))
        row["is_home"] = draw(st.sampled_from([True, True, False, None]))
        row["registered"] = draw(st.booleans())
    n = len(rows)
    owner = draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n))
    cluster = np.array([min(u for u in range(n) if owner[u] == owner[uid]) for uid in range(n)], np.int64)
    return table(rows), cluster


@settings(max_examples=200, deadline=None)
@given(street=_street())
def test_dropping_the_community_groups_where_everyone_has_an_address_changes_nothing(street):
    """The same clusters, joins and reviews as deciding every community group."""
    records, cluster = street
    found = join_sole_namesakes(records, cluster)
    every = join_sole_namesakes(records, cluster, every_group=True)
    assert found[0].tolist() == every[0].tolist()
    assert found[1:] == every[1:]


def test_only_the_groups_with_a_person_without_an_address_are_gathered():
    """Two housed 王芳 in one community are no group of the community pass; a 李娜 without one is."""
    rows = [
        record(0, name_key="王芳", house_key=FLATS[0], community=COMMUNITIES[0], registered=True),
        record(1, name_key="王芳", house_key=FLATS[1], community=COMMUNITIES[0]),
        record(2, name_key="李娜", house_key=FLATS[0], community=COMMUNITIES[0], registered=True),
        record(3, name_key="李娜", community=COMMUNITIES[0], is_home=True),
    ]
    records, cluster = table(rows), np.arange(4, dtype=np.int64)
    uids = np.arange(4, dtype=np.int64)
    housed = np.array([True, True, True, False])
    assert _namesake_groups(records, uids, cluster, "community") == [[(2, 2), (3, 3)], [(0, 0), (1, 1)]]
    assert _namesake_groups(records, uids, cluster, "community", ~housed) == [[(2, 2), (3, 3)]]
    joined = join_sole_namesakes(records, cluster)
    assert joined[0].tolist() == [0, 1, 2, 2]
    assert joined[1] == [(2, 3)]


def test_a_group_where_nobody_has_an_address_is_still_decided():
    """Three 张伟 of a community, none with an address: each could be either other one (reviewed)."""
    rows = [record(uid, name_key="张伟", community=COMMUNITIES[1], registered=uid == 0) for uid in range(3)]
    records, cluster = table(rows), np.arange(3, dtype=np.int64)
    found = join_sole_namesakes(records, cluster)
    assert found[0].tolist() == [0, 1, 2]
    assert sorted(set(found[2])) == [(0, 1), (0, 2), (1, 2)]
    assert found[1:] == join_sole_namesakes(records, cluster, every_group=True)[1:]
