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

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.privacy.keys import Key
from islandbridge.privacy.pseudonymise import person_keys

KEY = ["system", "record_key"]


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
    must not be issued again. Deterministic.
    """
    joined = current.merge(previous.rename(columns={"person_key": "old_key"}), on=KEY, how="left")
    kept = _keep_by_overlap(joined)
    issued = set(previous["person_key"]) | set(retired) | set(kept.values())
    fresh = current[~current["cluster"].isin(list(kept))]
    keys = {**kept, **_fresh_keys(mac_key, fresh, issued)}
    joined["new_key"] = joined["cluster"].map(keys)
    churn = int((joined["old_key"].notna() & (joined["old_key"] != joined["new_key"])).sum())
    return KeyAssignment(keys, _events(previous, joined, set(kept.values())), churn)


def _keep_by_overlap(joined: pd.DataFrame) -> dict[int, str]:
    overlap = joined.dropna(subset=["old_key"]).groupby(["cluster", "old_key"]).size().reset_index(name="n")
    # A cluster whose records carried one old key, which no other cluster's records carried, meets no rival
    # in the greedy pass: it keeps that key whatever the order. Only the contested pairs (a day's merges
    # and splits) go through the loop.
    sole = ~overlap["cluster"].duplicated(keep=False) & ~overlap["old_key"].duplicated(keep=False)
    kept = dict(zip(overlap["cluster"][sole].tolist(), overlap["old_key"][sole].tolist(), strict=True))
    overlap = overlap[~sole].sort_values(["n", "old_key", "cluster"], ascending=[False, True, True])
    taken: set[str] = set()
    for cluster, old in zip(overlap["cluster"].tolist(), overlap["old_key"].tolist(), strict=True):
        if cluster not in kept and old not in taken:
            kept[cluster] = old
            taken.add(old)
    return kept


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


def _events(previous: pd.DataFrame, joined: pd.DataFrame, kept: set[str]) -> list[KeyEvent]:
    moved = previous.rename(columns={"person_key": "old_key"}).merge(
        joined[[*KEY, "new_key"]], on=KEY, how="left"
    )
    changed = moved.loc[moved["old_key"] != moved["new_key"], "old_key"].unique()
    moved = moved[moved["old_key"].isin(changed)]
    counts = moved.groupby(["old_key", "new_key"], dropna=False).size().reset_index(name="n")
    counts = counts.sort_values(
        ["old_key", "n", "new_key"], ascending=[True, False, True], na_position="last"
    )
    events = []
    for old, group in counts.groupby("old_key", sort=True):
        alive = [n for n in group["new_key"].tolist() if isinstance(n, str)]
        if old in kept:
            events += [KeyEvent("split", old, new) for new in alive if new != old]
        elif alive:
            events.append(KeyEvent("merge", old, alive[0]))
            events += [KeyEvent("split", old, new) for new in alive[1:]]
        else:
            events.append(KeyEvent("retire", old, None))
    return events
