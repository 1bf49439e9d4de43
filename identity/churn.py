"""Why person keys changed in a run: each record's change, and whether each split is explained by data.

A record's ``change`` in ``core.identity_map_changes`` (`record_changes`):

- ``new`` — first mapped in this run;
- ``merge`` — its person's key was merged into another (the old key redirects);
- ``split`` — it left a person that lives on (or that was merged elsewhere) for another one;
- ``retire`` — it left the sources and so did every record of its person; ``removed`` — it left, its
  person lives on;
- ``updated`` — same key; its match decision or record versions changed.

A **split is explained** (`explain_splits`) when that day's data changed something about the persons
involved: a record of the person before, or of either person after, is new, gone, or has different
identifying fields (its fingerprint, `links.fingerprints`, differs from the one stored with its links),
or a person decided about one of its records. An unexplained split is what issue #16 saw: a correctly
linked record cut away from its own person while nothing about it changed. `summary` gives the run's
counts for ``meta.identity_runs.changes`` and the run report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from islandbridge.identity.keys import KeyEvent
from islandbridge.identity.pairing import KEY, Pairing, differs, map_table, pair

CHANGES = ("new", "merge", "split", "retire", "removed", "updated")


def record_changes(previous: pd.DataFrame, current: pd.DataFrame, events: Iterable[KeyEvent]) -> pd.DataFrame:
    """``system, record_key, change`` for every record that is new, changed key or left, in key order.

    ``previous``: the map before (system, record_key, person_key); ``current``: the map now (same columns).
    Records that kept their key are not listed (`tables` marks them ``updated`` when their row changed).
    The run calls `changes_paired` with the pairing it already made.
    """
    before, now = map_table(previous), map_table(current)
    return changes_paired(before, now, pair(before, now), events)


def changes_paired(
    previous: pa.Table, current: pa.Table, paired: Pairing, events: Iterable[KeyEvent]
) -> pd.DataFrame:
    """`record_changes` on Arrow maps paired once: only the rows that changed leave Arrow."""
    merged_away = {e.old_key for e in events if e.event == "merge"}
    retired = {e.old_key for e in events if e.event == "retire"}
    old = previous["person_key"].combine_chunks()
    new = paired.new_of_previous(current["person_key"])
    left = pa.array(differs(old, new))
    arrived = pa.array(paired.before < 0)
    new_records = int(np.count_nonzero(paired.before < 0))
    changed = pd.DataFrame(
        {
            **{c: previous[c].filter(left).to_pylist() + current[c].filter(arrived).to_pylist() for c in KEY},
            "old": old.filter(left).to_pylist() + [None] * new_records,
            "new": new.filter(left).to_pylist() + current["person_key"].filter(arrived).to_pylist(),
        },
        dtype=object,
    )
    changed = changed.sort_values(KEY, kind="stable", ignore_index=True)
    changed["change"] = [
        _change(o, n, merged_away, retired)
        for o, n in zip(changed["old"].tolist(), changed["new"].tolist(), strict=True)
    ]
    return changed[[*KEY, "change"]]


def _change(old: object, new: object, merged_away: set[str], retired: set[str]) -> str:
    if not isinstance(old, str):
        return "new"
    if not isinstance(new, str):
        return "retire" if old in retired else "removed"
    return "merge" if old in merged_away else "split"


def explain_splits(
    previous: pd.DataFrame,
    current: pd.DataFrame,
    events: Iterable[KeyEvent],
    before: Mapping[tuple[str, str], str],
    now: Mapping[tuple[str, str], str],
    decided: set[tuple[str, str]] = frozenset(),
) -> list[dict]:
    """For each ``split`` event, whether that day's data explains it (see the module's docstring).

    ``before``: the fingerprint stored with each linked record's links before the run; ``now``: every
    current record's fingerprint; ``decided``: records a person decided about. Returns one dict per
    split: ``old_key, new_key, records`` (how many moved) and ``explained`` (bool).
    """
    events = [event for event in events if event.event == "split"]
    if not events:  # a day without splits (most days) need not index the whole map
        return []
    prev_members = _members(previous)
    now_members = _members(current)
    prev_keys = set(zip(previous["system"], previous["record_key"], strict=True))
    now_keys = set(zip(current["system"], current["record_key"], strict=True))
    moved = previous.merge(current, on=KEY, suffixes=("_old", "_new"))
    out = []
    for event in events:
        if event.event != "split":
            continue
        involved = (
            prev_members.get(event.old_key, [])
            + now_members.get(event.new_key, [])
            + now_members.get(event.old_key, [])
        )
        explained = any(
            r not in prev_keys or r not in now_keys or r in decided or _print_changed(r, before, now)
            for r in involved
        )
        count = int(
            ((moved["person_key_old"] == event.old_key) & (moved["person_key_new"] == event.new_key)).sum()
        )
        out.append(
            {"old_key": event.old_key, "new_key": event.new_key, "records": count, "explained": explained}
        )
    return out


def _print_changed(record: tuple[str, str], before: Mapping, now: Mapping) -> bool:
    return record in before and before[record] != now.get(record)


def _members(data: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    members: dict[str, list[tuple[str, str]]] = {}
    for s, k, p in zip(data["system"], data["record_key"], data["person_key"], strict=True):
        members.setdefault(p, []).append((s, k))
    return members


def summary(changes: pd.DataFrame, splits: Sequence[dict], fingerprints_changed: int) -> dict[str, int]:
    """The run's churn by reason: records per ``change``, splits explained and not, records whose
    identifying fields changed."""
    counts = changes["change"].value_counts().to_dict() if len(changes) else {}
    return {
        **{f"records_{c}": int(counts.get(c, 0)) for c in CHANGES if c != "updated"},
        "splits_explained": sum(bool(s["explained"]) for s in splits),
        "splits_unexplained": sum(not s["explained"] for s in splits),
        "records_with_changed_fields": fingerprints_changed,
    }


def prints_changed(links: pd.DataFrame, ends: tuple[np.ndarray, np.ndarray], prints: Sequence[str]) -> int:
    """How many linked records now have other identifying fields than the fingerprint stored with their
    links (a record on several links: the one on its last end, left ends before right ones).

    Asked every run: with each end's uid (``ends``, `links.link_uids`), the stored and current fingerprints
    are compared by integer, not through two dictionaries keyed by every record."""
    uids = np.concatenate(ends)
    stored = pd.concat([links["fingerprint_l"], links["fingerprint_r"]], ignore_index=True).to_numpy(object)
    present = np.flatnonzero(~np.isnan(uids))
    last = np.full(len(prints), -1, dtype=np.int64)
    np.maximum.at(last, uids[present].astype(np.int64), present)
    linked = np.flatnonzero(last >= 0)
    return int(np.count_nonzero(stored[last[linked]] != np.asarray(prints, dtype=object)[linked]))
