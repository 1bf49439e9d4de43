"""Pairwise and cluster scores of an assignment against the truth."""

from __future__ import annotations

import pandas as pd

from islandbridge.identity.evaluate import cross_id_merges, score_assignment


def _frame(rows, value):
    return pd.DataFrame(rows, columns=["system", "record_key", value])


def test_scores_count_pairs_merges_and_splits():
    truth = _frame([("a", "1", "P1"), ("b", "2", "P1"), ("b", "3", "P1"), ("a", "4", "P2")], "person_id")
    found = _frame([("a", "1", "k1"), ("b", "2", "k1"), ("b", "3", "k2"), ("a", "4", "k2")], "person_key")
    scores = score_assignment(found, truth)
    assert scores["overall"]["correct_pairs"] == 1 and scores["overall"]["found_pairs"] == 2
    assert scores["overall"]["true_pairs"] == 3
    assert scores["false_merges"] == 1 and scores["splits"] == 1
    assert scores["by_system_pair"]["a~b"]["true_pairs"] == 2


def test_records_missing_from_the_map_count_as_people_of_their_own():
    truth = _frame([("a", "1", "P1"), ("b", "2", "P1")], "person_id")
    scores = score_assignment(_frame([("a", "1", "k1")], "person_key"), truth)
    assert scores["records_unmapped"] == 1 and scores["overall"]["recall"] == 0.0


def test_cross_id_merges_counts_persons_with_two_numbers():
    found = _frame([("a", "1", "k1"), ("b", "2", "k1"), ("a", "3", "k2")], "person_key")
    ids = _frame([("a", "1", "X"), ("b", "2", "Y"), ("a", "3", "X")], "id_full")
    assert cross_id_merges(found, ids) == 1
