"""Stable person keys: who keeps which ``person_key`` from one run to the next, and what changed.

A new person's key is the HMAC (`transforms.pseudonymise.person_key`) of an *anchor*: the smallest
valid full ID number among its records, else the smallest ``passport:<number>``, else the smallest
``record:<system>:<record_key>``. The anchor only names a person the first time; after that a person
keeps its key by *overlap*: each new cluster takes the previous key that most of its records carried
(clusters and old keys are paired greedily, largest overlap first, ties by key), so a key survives
when the anchor changes — a full ID number turning up for an IoT-only person, a record leaving.

Changes are events with both keys:

- ``merge`` (old → new): an old key no cluster kept; most of its records went to ``new``. The old key
  then redirects to the new one (`KeyAssignment.redirects`).
- ``split`` (old → new): records of ``old`` went to a different person ``new`` (``old`` lives on, or
  was merged into a third person).
- ``retire`` (old → None): every record of the key is gone from the sources.

A key that was ever issued is never issued again to another person. *Churn* counts records that were
mapped before and now carry a different key: zero on an unchanged re-run.

Example::

    current = pd.DataFrame({"system": [...], "record_key": [...], "cluster": [...], "id_full": [...]})
    result = assign_keys(mac_key, current, previous)   # previous: system, record_key, person_key
    result.keys[cluster]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.pairing import Pairing, differs, map_table, pair
from islandbridge.privacy.keys import Key
from islandbridge.privacy.pseudonymise import person_keys


@dataclass(frozen=True)
class KeyEvent:
    event: str  # 'merge' | 'split' | 'retire'
    old_key: str
    new_key: str | None


@dataclass
class KeyAssignment:
    """The key of each cluster, the events since the previous map, and the churn."""

    keys: dict[int, str]  # cluster id -> person_key
    events: list[KeyEvent] = field(default_factory=list)
    churn: int = 0
    per_record: pa.Array | None = None  # each record's person_key, in the order of the records

    @property
    def redirects(self) -> list[tuple[str, str]]:
        return [(e.old_key, e.new_key) for e in self.events if e.event == "merge" and e.new_key]

    def count(self, event: str) -> int:
        return sum(e.event == event for e in self.events)


def anchor_identities(records: pd.DataFrame) -> list[str]:
    """A cluster's candidate anchors, best first: 18-digit numbers, passports, then record references.

    ``records``: the cluster's rows (system, record_key, id_full).
    """
    ids = [i for i in records["id_full"].dropna().unique().tolist() if i]
    numbers = sorted(i for i in ids if not i.startswith("P:"))
    passports = sorted(f"passport:{i[2:]}" for i in ids if i.startswith("P:"))
    refs = sorted(f"record:{s}:{k}" for s, k in zip(records["system"], records["record_key"], strict=True))
    return [*numbers, *passports, *refs]


def assign_keys(
    mac_key: Key, current: pd.DataFrame, previous: pd.DataFrame, retired: Iterable[str] = ()
) -> KeyAssignment:
    """Give each cluster of ``current`` (system, record_key, cluster, id_full) a person_key.

    ``previous`` (system, record_key, person_key) is the previous run's map; ``retired`` are keys that
    must not be issued again. Deterministic. (The run itself calls `assign_paired`, with what it has.)
    """
    records = pa.table(
        {c: pa.array(current[c], pa.string(), from_pandas=True) for c in ("system", "record_key", "id_full")}
    )
    before = map_table(previous)
    clusters = np.asarray(current["cluster"].tolist(), dtype=np.int64)
    return assign_paired(mac_key, records, clusters, before, pair(before, records), retired)


def assign_paired(
    mac_key: Key,
    records: pa.Table,
    clusters: np.ndarray,
    previous: pa.Table,
    paired: Pairing,
    retired: Iterable[str] = (),
    remembered: pa.Array | None = None,
) -> KeyAssignment:
    """`assign_keys` on Arrow columns and a `Pairing` the run made once: ``records`` (system,
    record_key, id_full), each record's cluster, ``previous`` (system, record_key, person_key).
    ``remembered``: each record's key before a rewind forgot it (`remembered.hints`); a cluster that kept
    no previous key takes, by the same overlap, one of these that was not issued to anyone else."""
    old = paired.old_of_current(previous["person_key"])
    kept = _keep_by_overlap(clusters, old)
    is_fresh = ~np.isin(clusters, np.fromiter(kept, np.int64, len(kept)))
    keys = dict(kept)
    if is_fresh.any():  # most days without change: every cluster kept a key, and nothing is issued
        issued = set(pc.unique(previous["person_key"]).to_pylist()) | set(retired) | set(kept.values())
        if remembered is not None:
            back = _remembered_keys(clusters, remembered, is_fresh, issued)
            keys.update(back)
            issued.update(back.values())
            is_fresh &= ~np.isin(clusters, np.fromiter(back, np.int64, len(back)))
        fresh = records.filter(pa.array(is_fresh)).to_pandas().astype(object)
        fresh["cluster"] = clusters[is_fresh].tolist()
        keys.update(_fresh_keys(mac_key, fresh, issued))
    new = _per_record(clusters, keys)
    churn = int((old.is_valid().to_numpy(zero_copy_only=False) & differs(old, new)).sum())
    events = _events(previous["person_key"], paired.new_of_previous(new), set(kept.values()))
    return KeyAssignment(keys, events, churn, new)


def _remembered_keys(
    clusters: np.ndarray, remembered: pa.Array, is_fresh: np.ndarray, issued: set[str]
) -> dict[int, str]:
    """Remembered keys the fresh clusters take by overlap, leaving out any key issued since."""
    taken = pc.fill_null(pc.is_in(remembered, value_set=pa.array(sorted(issued), pa.string())), True)
    usable = is_fresh & ~taken.to_numpy(zero_copy_only=False)
    if not usable.any():
        return {}
    return _keep_by_overlap(clusters[usable], remembered.filter(pa.array(usable)))


def _per_record(clusters: np.ndarray, keys: dict[int, str]) -> pa.Array:
    """Each record's key, from its cluster's: one lookup per cluster, then an integer ``take``."""
    unique, inverse = np.unique(clusters, return_inverse=True)
    return pa.array([keys[c] for c in unique.tolist()], pa.string()).take(pa.array(inverse.ravel()))


def _keep_by_overlap(clusters: np.ndarray, old: pa.Array) -> dict[int, str]:
    """Old keys kept by clusters: greedily, the (cluster, old key) pairs with most records first, ties by
    key then cluster. The old keys are coded as integers in their sort order, so the pairs are counted and
    ordered in numpy, not grouped as strings."""
    valid = old.is_valid().to_numpy(zero_copy_only=False)
    if not valid.any():
        return {}
    names, codes = _sorted_codes(old.filter(pa.array(valid)))
    cluster, code, n = _pair_counts(clusters[valid], codes, len(names))
    # A cluster whose records carried one old key, which no other cluster's records carried, meets no rival
    # in the greedy pass: it keeps that key whatever the order. Only the contested pairs (a day's merges
    # and splits) go through the loop.
    low = int(cluster.min())
    sole = (np.bincount(cluster - low)[cluster - low] == 1) & (
        np.bincount(code, minlength=len(names))[code] == 1
    )
    kept = dict(zip(cluster[sole].tolist(), names.take(pa.array(code[sole])).to_pylist(), strict=True))
    contested = np.flatnonzero(~sole)
    order = contested[np.lexsort((cluster[contested], code[contested], -n[contested]))]
    taken: set[int] = set()
    for c, k in zip(cluster[order].tolist(), code[order].tolist(), strict=True):
        if c not in kept and k not in taken:
            kept[c] = names[k].as_py()
            taken.add(k)
    return kept


def _sorted_codes(keys: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The distinct keys in sort order, and each key's position among them (so that codes compare as the
    keys do)."""
    encoded = pc.dictionary_encode(keys)
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return encoded.dictionary.take(pa.array(order)), rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _pair_counts(clusters: np.ndarray, codes: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """The distinct (cluster, code) pairs and how many records each has."""
    low = int(clusters.min())
    pairs, n = np.unique((clusters - low) * width + codes, return_counts=True)
    return pairs // width + low, pairs % width, n


def _fresh_keys(mac_key: Key, fresh: pd.DataFrame, issued: set[str]) -> dict[int, str]:
    """Keys for clusters no previous key went to: the first anchor whose key was never issued."""
    if fresh.empty:
        return {}
    ids = fresh["id_full"].fillna("")
    numbers = ids.where(ids.ne("") & ~ids.str.startswith("P:"))
    passports = ("passport:" + ids.str[2:]).where(ids.str.startswith("P:"))
    refs = "record:" + fresh["system"] + ":" + fresh["record_key"]
    by_cluster = pa.table(
        {
            "cluster": pa.array(fresh["cluster"].tolist(), pa.int64()),
            **{
                name: pa.array(col.tolist(), pa.string(), from_pandas=True)
                for name, col in (("number", numbers), ("passport", passports), ("ref", refs))
            },
        }
    )
    first = by_cluster.group_by("cluster").aggregate([(c, "min") for c in ("number", "passport", "ref")])
    anchors = pc.coalesce(first["number_min"], first["passport_min"], first["ref_min"])
    keys = dict(zip(first["cluster"].to_pylist(), person_keys(mac_key, anchors).to_pylist(), strict=True))
    for cluster in sorted(c for c, key in keys.items() if key in issued):
        keys[cluster] = _next_free(mac_key, anchor_identities(fresh[fresh["cluster"] == cluster]), issued)
    issued.update(keys.values())
    return keys


def _next_free(mac_key: Key, candidates: list[str], issued: set[str]) -> str:
    def mac(text: str) -> str:
        return person_keys(mac_key, [text]).to_pylist()[0]

    for text in candidates[1:]:
        if (key := mac(text)) not in issued:
            return key
    n = 2
    while (key := mac(f"{candidates[0]}#{n}")) in issued:
        n += 1
    return key


def _events(old: pa.ChunkedArray, new: pa.Array, kept: set[str]) -> list[KeyEvent]:
    """Merges, splits and retirements from each previous row's old and new key (new null: gone). Only
    the old keys with a record that changed key are grouped: none on a day without change."""
    old = old.combine_chunks() if isinstance(old, pa.ChunkedArray) else old
    moved = differs(old, new)
    if not moved.any():
        return []
    changed = pc.unique(old.filter(pa.array(moved)))
    rows = pc.is_in(old, value_set=changed)
    moved = pd.DataFrame(
        {"old_key": old.filter(rows).to_pylist(), "new_key": new.filter(rows).to_pylist()}, dtype=object
    )
    return _events_of(moved, kept)


def _events_of(moved: pd.DataFrame, kept: set[str]) -> list[KeyEvent]:
    """The events of the old keys in ``moved`` (old_key, new_key: one row per record they had before):
    where most of a key's records went decides whether it merged, split or retired."""
    counts = moved.groupby(["old_key", "new_key"], dropna=False).size().reset_index(name="n")
    counts = counts.sort_values(
        ["old_key", "n", "new_key"], ascending=[True, False, True], na_position="last"
    )
    events = []
    for old_key, group in counts.groupby("old_key", sort=True):
        alive = [n for n in group["new_key"].tolist() if isinstance(n, str)]
        if old_key in kept:
            events += [KeyEvent("split", old_key, new) for new in alive if new != old_key]
        elif alive:
            events.append(KeyEvent("merge", old_key, alive[0]))
            events += [KeyEvent("split", old_key, new) for new in alive[1:]]
        else:
            events.append(KeyEvent("retire", old_key, None))
    return events
