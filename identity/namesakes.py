"""Sole namesakes: two persons that are each other's only compatible namesake in one flat or community.

A pass of the clustering (`clusters.build_clusters`, after the model's links and the flatmates): see
`join_sole_namesakes`. The model rightly scores such a pair below the threshold: a card holder whose name
has a homophone typo, sharing only the flat with the registry's resident, looks like a namesake there; it
cannot see that the registry, listing every registered resident of the flat, living or gone, lists no
second person of that name.

The community pass decides only on persons without an address (`NAMESAKE_PLACES`): a (community, name)
group whose namesakes all have one can give neither a join nor a review, so such groups are dropped before
their profiles are gathered (on a 300,000 street nearly every group of the community pass is one, and the
profiles of their persons were most of the pass's time). The groups left are decided exactly as before,
each on its own (`test_namesakes.py` compares the pass with the groups kept).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.profiles import Profile, cluster_profiles, conflict, join_pairs

# Where two persons of one name are looked for, and whether the pass joins only a person of whom no record
# gives any address to one with an address there (in a community, two addressed namesakes may well be two
# people, and an incident reporter is placed by the incident, not by a home).
NAMESAKE_PLACES = (("house_key", False), ("community", True))

Group = list[tuple[int, int]]  # (cluster label, its first uid there) of one place and name, in uid order


def join_sole_namesakes(
    records: pa.Table, cluster: np.ndarray, *, every_group: bool = False
) -> tuple[np.ndarray, list[tuple[int, int]], list[tuple[int, int]]]:
    """Join clusters that are each other's only compatible namesake (``pinyin_key``) in one place.

    Places (`NAMESAKE_PLACES`): a flat counts only the records that give it as a home (``is_home``); a
    community counts every record placed in it, and joins only a person none of whose records has an
    address (no ``house_key``, and none of them an incident's) to one who has. A place's namesakes are
    the clusters with a record of that pinyin there; one of them must hold a ``registered`` record there
    (the registry's list of who lives or lived there). Two namesakes join when neither is compatible
    with any other namesake of the place (compatible: no `conflict` as wholes; a 1945 roster row is not
    the 1940 or the 1958 卢玉梅) and they are compatible with each other. Returns the new cluster of each
    record (the smallest uid of the joined clusters stays the label), for every join the pair of records
    (one of each side) that named it, and the pairs (smaller uid first) to review as
    ``several_namesakes``: each namesake of a person without an address who has more than one compatible
    namesake in the community (a roster row that could be either of two people: the bureau should say
    which). Deterministic: places are visited in sorted order. ``every_group``: decide the community
    groups whose namesakes all have an address too (they give nothing; for the tests that show it).
    """
    cluster = np.asarray(cluster, np.int64).copy()
    uids = np.arange(records.num_rows, dtype=np.int64)
    home = np.asarray(
        pc.fill_null(pc.and_(records["is_home"], pc.is_valid(records["house_key"])), False), bool
    )
    placed = home | ~np.asarray(pc.fill_null(records["is_home"], True), bool)
    named = np.asarray(pc.is_valid(records["pinyin_key"]), bool)
    joined: list[tuple[int, int]] = []
    undecided: list[tuple[int, int]] = []
    for column, unaddressed_only in NAMESAKE_PLACES:
        place = (
            np.asarray(pc.is_valid(records[column]), bool) & named & (home if column == "house_key" else True)
        )
        housed = np.zeros(len(cluster), bool)  # by label: the persons with a record that has an address
        housed[cluster[placed]] = True
        wanted = ~housed if unaddressed_only and not every_group else None
        groups = _namesake_groups(records, uids[place], cluster, column, wanted)
        if not groups:
            continue
        profiles = cluster_profiles(records, cluster, {c for group in groups for c, _ in group})
        compatible = [_compatible(group, profiles) for group in groups]
        pairs = _sole_pairs(groups, compatible)
        if unaddressed_only:
            pairs = [(a, b) for a, b in pairs if housed[cluster[a]] != housed[cluster[b]]]
            undecided += _undecided(groups, compatible, housed)
        if not pairs:
            continue
        roots = join_pairs(cluster, profiles, pairs)
        joined += [(a, b) for a, b in pairs if roots[a] == roots[b]]
        cluster = roots
    return cluster, joined, undecided


def _namesake_groups(
    records: pa.Table, uids: np.ndarray, cluster: np.ndarray, column: str, wanted: np.ndarray | None = None
) -> list[Group]:
    """Per (place, pinyin) with two or more clusters and a registry row: [(cluster, its first uid there)].
    ``wanted`` (by cluster label): only the groups with at least one such cluster."""
    index = pa.array(uids, pa.int64())
    labels = cluster[uids]
    table = pa.table(
        {
            "place": records[column].take(index),
            "pinyin": records["pinyin_key"].take(index),
            "cluster": pa.array(labels),
            "uid": index,
            "registered": pc.fill_null(records["registered"].take(index), False),
            "wanted": pa.array(np.ones(len(uids), bool) if wanted is None else wanted[labels]),
        }
    )
    firsts = table.group_by(["place", "pinyin", "cluster"]).aggregate(
        [("uid", "min"), ("registered", "any"), ("wanted", "any")]
    )
    counts = firsts.group_by(["place", "pinyin"]).aggregate(
        [("cluster", "count"), ("registered_any", "any"), ("wanted_any", "any")]
    )
    busy = counts.filter(
        pc.and_(
            pc.and_(pc.greater_equal(counts["cluster_count"], 2), counts["registered_any_any"]),
            counts["wanted_any_any"],
        )
    )
    if not busy.num_rows:
        return []
    rows = firsts.join(busy.select(["place", "pinyin"]), ["place", "pinyin"], join_type="inner")
    rows = rows.sort_by([("place", "ascending"), ("pinyin", "ascending"), ("uid_min", "ascending")])
    groups: dict[tuple[str, str], Group] = {}
    for place, pinyin, label, first in zip(
        *(rows[c].to_pylist() for c in ("place", "pinyin", "cluster", "uid_min")), strict=True
    ):
        groups.setdefault((place, pinyin), []).append((label, first))
    return list(groups.values())


def _compatible(group: Group, profiles: Mapping[int, Profile]) -> dict[int, list[int]]:
    """Each cluster of a group -> the other clusters of the group it does not `conflict` with, in the
    group's order. `conflict` is symmetric: each pair is asked once (a common name in a community makes
    groups of dozens)."""
    labels = [label for label, _ in group]
    fits: dict[int, list[int]] = {label: [] for label in labels}
    for i, label in enumerate(labels):
        for other in labels[i + 1 :]:
            if conflict(profiles[label], profiles[other]) is None:
                fits[label].append(other)
                fits[other].append(label)
    return fits


def _sole_pairs(groups: list[Group], compatibles: list[dict[int, list[int]]]) -> list[tuple[int, int]]:
    """(first uid of one cluster, of the other) for the clusters of a group that are each other's only
    compatible namesake."""
    pairs = []
    for group, compatible in zip(groups, compatibles, strict=True):
        first = dict(group)
        for label, _ in group:
            if len(compatible[label]) == 1:
                other = compatible[label][0]
                if label < other and compatible[other] == [label]:
                    pairs.append((first[label], first[other]))
    return pairs


def _undecided(
    groups: list[Group], compatibles: list[dict[int, list[int]]], housed: np.ndarray
) -> list[tuple[int, int]]:
    """The pair (smaller uid first) of each compatible namesake of a person without an address
    (``housed``, by label, False) who has more than one."""
    pairs = []
    for group, compatible in zip(groups, compatibles, strict=True):
        first = dict(group)
        for label, others in compatible.items():
            if not housed[label] and len(others) > 1:
                pairs += [
                    (min(first[label], first[other]), max(first[label], first[other])) for other in others
                ]
    return pairs
