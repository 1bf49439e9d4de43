"""Scoring a person assignment against the truth: pairwise precision, recall and F1, and cluster errors.

A *pair* is two records given the same person. Predicted pairs share a ``person_key``; true pairs share
a ``person_id`` in the simulator's ``truth/records.csv``. Scores are given overall and per system pair
(``civil_affairs~resident_registry``; a system with itself for duplicates within one system). Only
records the truth names are scored; a truth record missing from the assignment counts as a person of
its own (it can only cost recall).

Cluster level: a *false merge* is a predicted person holding records of two or more true persons; a
*split* is a true person spread over two or more predicted persons.

Example::

    scores = score_assignment(predicted, truth)   # DataFrames: system, record_key, person_key / person_id
    scores["overall"]["precision"]
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import Any

import pandas as pd

KEY = ["system", "record_key"]


def score_assignment(predicted: pd.DataFrame, truth: pd.DataFrame) -> dict[str, Any]:
    """Pairwise and cluster-level scores of ``predicted`` (system, record_key, person_key) vs ``truth``."""
    data = truth[[*KEY, "person_id"]].merge(predicted[[*KEY, "person_key"]], on=KEY, how="left")
    missing = data["person_key"].isna()
    data.loc[missing, "person_key"] = (
        "unmapped:" + data.loc[missing, "system"] + "|" + data.loc[missing, "record_key"]
    )
    systems = sorted(data["system"].unique())
    found = pair_counts(data, ["person_key"], systems)
    true = pair_counts(data, ["person_id"], systems)
    both = pair_counts(data, ["person_key", "person_id"], systems)
    per_pair = {name: _prf(both[name], found[name], true[name]) for name in true if true[name] or found[name]}
    overall = _prf(sum(both.values()), sum(found.values()), sum(true.values()))
    return {
        "overall": overall,
        "by_system_pair": per_pair,
        "records": len(data),
        "records_unmapped": int(missing.sum()),
        "false_merges": int((data.groupby("person_key")["person_id"].nunique() > 1).sum()),
        "splits": int((data.groupby("person_id")["person_key"].nunique() > 1).sum()),
        "persons_true": int(data["person_id"].nunique()),
        "persons_found": int(data["person_key"].nunique()),
    }


def cross_id_merges(predicted: pd.DataFrame, ids: pd.DataFrame) -> int:
    """Persons in ``predicted`` whose records carry two or more different valid full ID numbers.

    ``ids``: system, record_key, id_full (null where the record has no valid full number).
    """
    data = predicted[[*KEY, "person_key"]].merge(ids[[*KEY, "id_full"]], on=KEY).dropna(subset=["id_full"])
    return int((data.groupby("person_key")["id_full"].nunique() > 1).sum())


def pair_counts(data: pd.DataFrame, by: list[str], systems: list[str]) -> dict[str, int]:
    counts = data.groupby([*by, "system"]).size().unstack(fill_value=0).reindex(columns=systems, fill_value=0)
    result = {}
    for left, right in combinations_with_replacement(systems, 2):
        if left == right:
            pairs = (counts[left] * (counts[left] - 1) // 2).sum()
        else:
            pairs = (counts[left] * counts[right]).sum()
        result[f"{left}~{right}"] = int(pairs)
    return result


def _prf(tp: int, found: int, true: int) -> dict[str, float | int]:
    precision = tp / found if found else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 5),
        "recall": round(recall, 5),
        "f1": round(f1, 5),
        "true_pairs": true,
        "found_pairs": found,
        "correct_pairs": tp,
    }
