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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


def person_pair_counts(systems: pa.Array | pa.ChunkedArray, persons: pa.Array) -> tuple[dict[str, int], int]:
    """`pair_counts` by person over Arrow columns (each record's system and person key), and how many
    persons: counted as integer codes, since the run asks it of every record every day."""
    system, names = _codes(systems, sort=True)
    person, keys = _codes(persons)
    counts = np.bincount(person * len(names) + system, minlength=len(keys) * len(names))
    counts = counts.reshape(len(keys), len(names))
    result = {}
    for left, right in combinations_with_replacement(range(len(names)), 2):
        if left == right:
            pairs = (counts[:, left] * (counts[:, left] - 1) // 2).sum()
        else:
            pairs = (counts[:, left] * counts[:, right]).sum()
        result[f"{names[left]}~{names[right]}"] = int(pairs)
    return result, len(keys)


def _codes(values: pa.Array | pa.ChunkedArray, sort: bool = False) -> tuple[np.ndarray, list]:
    """Each value's code among the distinct values (in sort order when ``sort``), and those values."""
    encoded = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    names = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    if not sort:
        return codes, names
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[codes], [names[i] for i in order]


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
