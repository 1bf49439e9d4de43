"""Clustering under hard constraints: what may never be merged, and what goes to review."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.transforms.identity.clusters import Profile, build_clusters, conflict, identity_evidence
from islandbridge.transforms.identity.deterministic import id_links
from islandbridge.transforms.identity.probabilistic import has_identity_evidence, pair_evidence
from tests.identity.strategies import IDS, pairs, record, record_rows, scored_links, table


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
    pa_, pb = (Profile(r["id_full"], r["id_ps"], r["birth"], r["birth_ym"], r["sex"],
                       frozenset([r["scope"]]) if r["scope"] else frozenset(), r["born_by"]) for r in (a, b))
    assert conflict(pa_, pb) == conflict(pb, pa_)


@settings(max_examples=100, deadline=None)
@given(rows=record_rows())
def test_bulk_identity_evidence_agrees_with_the_pair_reading(rows):
    """The vectorised screen reads every pair exactly as `pair_evidence` does."""
    left, right = np.array([a for a in range(len(rows)) for b in range(len(rows)) if a != b]), \
        np.array([b for a in range(len(rows)) for b in range(len(rows)) if a != b])
    bulk = identity_evidence(table(rows), left, right).tolist()
    assert bulk == [has_identity_evidence(pair_evidence(rows[a], rows[b])) for a, b in zip(left, right, strict=True)]


def test_a_shared_phone_and_flat_alone_never_link():
    """Two names sharing a phone and a flat stay two people, however high the score; the pair is reviewed."""
    rows = [record(0, name_key="张伟", phones=["+8613800138000"], house_key="XQ001|1|1|101"),
            record(1, name_key="李娜", phones=["+8613800138000"], house_key="XQ001|1|1|101")]
    found = _cluster(rows, [(0, 1, 0.9999)])
    assert found.cluster[0] != found.cluster[1]
    assert _reasons(found) == {"no_identity_evidence"}


def test_a_chain_of_links_cannot_join_two_id_numbers():
    """A record linked to two people with different numbers joins at most one; the other link is reviewed."""
    rows = [record(0, name_key="张伟", id_full=IDS[0]), record(1, name_key="张伟"),
            record(2, name_key="张伟", id_full=IDS[1])]
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


def test_two_records_of_one_roster_stay_two_people():
    """The grid's 台账 lists each person once: two of its records never merge."""
    rows = [record(0, name_key="张伟", scope="grid_platform/residents", house_key="XQ001|1|1|101"),
            record(1, name_key="张伟", scope="grid_platform/residents", house_key="XQ001|1|1|101")]
    found = _cluster(rows, [(0, 1, 0.9999)])
    assert found.cluster[0] != found.cluster[1]
    assert _reasons(found) == {"same_roster"}


def test_an_adult_only_record_never_joins_a_baby():
    """A door-card holder (8 or older) never joins a person born last year."""
    rows = [record(0, name_key="王芳", birth="2025-05-10", house_key="XQ001|1|1|101"),
            record(1, name_key="王芳", born_by="2018-11-21", house_key="XQ001|1|1|101")]
    found = _cluster(rows, [(0, 1, 0.9999)])
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
