"""People's decisions as clustering constraints: ``same`` a hard link, ``different`` a cannot-link."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity.clusters import build_clusters
from islandbridge.identity.decided import DecisionConflict, Decisions
from islandbridge.identity.deterministic import id_links
from tests.identity.strategies import IDS, pairs, record, record_rows, scored_links, table


def _cluster(rows, links, decisions):
    records = table(rows)
    return build_clusters(records, id_links(records), pairs(links), decisions=decisions)


def test_different_keeps_a_linked_pair_apart_and_is_not_reviewed_again():
    """Two records the model links surely stay two persons once decided different, and no review asks again."""
    rows = [record(0, name_key="张伟", birth="1950-03-01"), record(1, name_key="张伟", birth="1950-03-01")]
    assert _cluster(rows, [(0, 1, 0.999)], None).cluster == [0, 0]
    found = _cluster(rows, [(0, 1, 0.999)], Decisions(different=((0, 1),)))
    assert found.cluster == [0, 1]
    assert found.reviews == [] and found.conflicts == []


def test_different_holds_for_whole_clusters_not_only_the_pair():
    """A third record linking to both sides cannot carry the decided pair into one person."""
    rows = [record(i, name_key="张伟", birth="1950-03-01") for i in range(3)]
    links = [(0, 2, 0.999), (1, 2, 0.999)]
    found = _cluster(rows, links, Decisions(different=((0, 1),)))
    assert found.cluster[0] != found.cluster[1]


def test_same_joins_a_pair_the_model_held_back_and_says_so():
    """A pair below the threshold becomes one person, matched by decision, and leaves the review list."""
    rows = [record(0, name_key="张伟"), record(1, name_key="章伟")]
    assert {r.reason for r in _cluster(rows, [(0, 1, 0.6)], None).reviews} == {"below_threshold"}
    found = _cluster(rows, [(0, 1, 0.6)], Decisions(same=((0, 1),)))
    assert found.cluster == [0, 0]
    assert found.matched_by == ["decision", "decision"]
    assert found.reviews == []


def test_same_is_refused_between_two_valid_id_numbers():
    """A decision does not overrule two different valid ID numbers: the pair stays apart, reported."""
    rows = [record(0, id_full=IDS[0]), record(1, id_full=IDS[1])]
    found = _cluster(rows, [], Decisions(same=((0, 1),)))
    assert found.cluster == [0, 1]
    assert found.conflicts == [DecisionConflict(0, 1, "same", "different_id")]


def test_different_between_equal_id_numbers_keeps_the_id_link_and_reports_it():
    rows = [record(0, id_full=IDS[0]), record(1, id_full=IDS[0])]
    found = _cluster(rows, [], Decisions(different=((0, 1),)))
    assert found.cluster == [0, 0]
    assert found.conflicts == [DecisionConflict(0, 1, "different", "same_id")]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_different_pair_is_never_one_person_unless_reported(data):
    """Whatever the scores, a pair decided different ends apart, or is in the conflicts."""
    rows = data.draw(record_rows())
    n = len(rows)
    if n < 2:
        return
    a = data.draw(st.integers(0, n - 2))
    b = data.draw(st.integers(a + 1, n - 1))
    found = _cluster(rows, data.draw(scored_links(n)), Decisions(different=((a, b),)))
    reported = {(c.uid_l, c.uid_r) for c in found.conflicts}
    assert found.cluster[a] != found.cluster[b] or (a, b) in reported
