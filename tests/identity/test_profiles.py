"""`profiles.cluster_profiles` gathers a cluster's profile column by column: it must equal merging its
records' profiles one by one in uid order (`Profile.merged`), which is what every pass relied on."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity.decided import with_apart
from islandbridge.identity.profiles import Profile, cluster_profiles, could_conflict, gathered_profiles
from tests.identity.strategies import IDS, SCOPES, record, table

# "" is a value no normaliser gives, but `merged` skips it like a null: so must the column-wise path
VALUES = {
    "id_full": [None, "", *IDS],
    "id_ps": [None, "", "511403_0517", "511403_0521"],
    "birth": [None, "", "1961-04-09", "1990-03-07"],
    "birth_ym": [None, "", "1961-04", "1990-03"],
    "sex": [None, "", "F", "M"],
    "scope": [*SCOPES, ""],
    "born_by": [None, "", "2010-11-20", "2008-11-20"],
}
ROW = st.fixed_dictionaries({column: st.sampled_from(values) for column, values in VALUES.items()})


def one_by_one(records, cluster: np.ndarray, labels: set[int]) -> dict[int, Profile]:
    """The reference: each record's own profile, merged in uid order."""
    members = [uid for uid in range(len(cluster)) if int(cluster[uid]) in labels]
    own = dict(zip(members, gathered_profiles(records, np.array(members, np.int64)), strict=True))
    return {
        label: reduce(Profile.merged, [own[u] for u in members if cluster[u] == label]) for label in labels
    }


def truthy(profile: Profile) -> tuple:
    """What `conflict` and the passes read of a profile: "" and None are alike (both falsy)."""
    return tuple(value or None for value in profile)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(ROW, min_size=1, max_size=12),
    seed=st.integers(0, 2**16),
    apart=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=3),
)
def test_cluster_profiles_equal_the_merge_in_uid_order(rows, seed, apart) -> None:
    records = table([record(uid, **row) for uid, row in enumerate(rows)])
    n = len(rows)
    records = with_apart(records, [(a % n, b % n) for a, b in apart if a % n != b % n])
    rng = np.random.default_rng(seed)
    # any cluster labelling whose label is the cluster's smallest uid, as the passes hand it over
    cluster = np.arange(n, dtype=np.int64)
    for uid in range(1, n):
        if rng.random() < 0.6:
            cluster[uid] = cluster[rng.integers(0, uid)]
    labels = {int(c) for c in cluster if rng.random() < 0.8} or {int(cluster[0])}
    got = cluster_profiles(records, cluster, labels)
    want = one_by_one(records, cluster, labels)
    assert got.keys() == want.keys()
    assert {k: truthy(v) for k, v in got.items()} == {k: truthy(v) for k, v in want.items()}


def may_conflict(rows: list[dict], apart: set[int]) -> bool:
    """The reference for `could_conflict`, one group in plain Python: two records or more, and two values
    of a compared field, a roster twice, a birth (or birth month) after the earliest bound, or a decision."""
    if len(rows) < 2:
        return False

    def values(column: str) -> list:
        return [row[column] for row in rows if row[column] is not None]

    scopes = values("scope")
    several = any(len(set(values(c))) > 1 for c in ("id_full", "id_ps", "birth", "birth_ym", "sex"))
    bound = min(values("born_by"), default=None)
    late = bound is not None and (
        max(values("birth"), default="") > bound or max(values("birth_ym"), default="") > bound[:7]
    )
    return several or len(scopes) > len(set(scopes)) or late or bool(apart)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(ROW, min_size=1, max_size=14),
    groups=st.lists(st.integers(0, 4), min_size=14, max_size=14),
    apart=st.lists(st.tuples(st.integers(0, 13), st.integers(0, 13)), max_size=2),
)
def test_could_conflict_finds_the_groups_the_rule_names(rows, groups, apart) -> None:
    """The screen's grouped codes (smallest and largest differ, a roster seen twice) name the same groups
    as the rule read value by value."""
    n = len(rows)
    records = with_apart(
        table([record(uid, **row) for uid, row in enumerate(rows)]),
        [(a % n, b % n) for a, b in apart if a % n != b % n],
    )
    members = pa.table({"component": pa.array(groups[:n], pa.int64()), "uid": pa.array(range(n), pa.int64())})
    got = set(could_conflict(records, members, ["component"])["component"].to_pylist())
    # the same groups under two string keys (a flat and a name, as `flatmates.NamesakeFlats` asks)
    named = pa.table(
        {
            "house": pa.array([f"XQ00{g % 2}|1|1|101" for g in groups[:n]]),
            "pinyin": pa.array([f"name{g}" for g in groups[:n]]),
            "uid": pa.array(range(n), pa.int64()),
        }
    )
    by_name = could_conflict(records, named, ["house", "pinyin"])
    assert {int(p.removeprefix("name")) for p in by_name["pinyin"].to_pylist()} == got
    assert by_name.num_rows == len(got)
    read = records.to_pylist()  # as `record` filled them in (an ID number gives its birth, ...)
    apart_of = records["apart"].to_pylist() if "apart" in records.column_names else [None] * n
    want = {
        g
        for g in set(groups[:n])
        if may_conflict(
            [read[u] for u in range(n) if groups[u] == g],
            {t for u in range(n) if groups[u] == g for t in (apart_of[u] or [])},
        )
    }
    assert got == want


def test_a_cluster_takes_the_first_value_in_uid_order_and_every_roster() -> None:
    records = table(
        [
            record(0, birth=None, scope="grid_platform/residents", born_by="2010-11-20"),
            record(1, birth="1990-03-07", sex="F", scope="resident_registry/t_jm:current"),
            record(2, birth="1961-04-09", born_by="2008-11-20"),
            record(3, birth="1970-01-01"),
        ]
    )
    got = cluster_profiles(records, np.array([0, 0, 0, 3], np.int64), {0})
    assert set(got) == {0}
    assert got[0].birth == "1990-03-07" and got[0].ym == "1990-03" and got[0].sex == "F"
    assert got[0].scopes == {"grid_platform/residents", "resident_registry/t_jm:current"}
    assert got[0].born_by == "2008-11-20"
