"""What a person (a cluster of records) is known to be, and when two persons cannot be one.

A `Profile` holds at most one of each identifying value of a cluster (a valid full ID number, a masked
number's visible parts, a birth date or month, a sex), the rosters it appears in and the latest birth
date its records allow; `conflict` says why two profiles cannot be one person. Every pass that joins
clusters (`clusters`, `household`) checks whole profiles, so a chain of joins can never carry two ID
numbers, two birth dates or two sexes into one person.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class Profile(NamedTuple):
    """What a cluster is known to be: at most one of each, and the rosters it already appears in."""

    id: str | None = None
    ps: str | None = None
    birth: str | None = None
    ym: str | None = None
    sex: str | None = None
    scopes: frozenset[str] = frozenset()
    born_by: str | None = None  # the latest birth date its records allow (an adult-only roster...)
    apart: frozenset[int] = frozenset()  # a person decided "different" (one token per decided pair)

    def merged(self, other: Profile) -> Profile:
        bound = min(filter(None, (self.born_by, other.born_by)), default=None)
        return Profile(
            self.id or other.id,
            self.ps or other.ps,
            self.birth or other.birth,
            self.ym or other.ym,
            self.sex or other.sex,
            self.scopes | other.scopes,
            bound,
            self.apart | other.apart,
        )


def conflict(a: Profile, b: Profile) -> str | None:
    """Why two clusters cannot be one person (a reason from `REASONS`), or None; symmetric.

    >>> conflict(Profile(id="110101199003070021"), Profile(id="110101199003070047"))
    'different_id'
    """
    if a.apart & b.apart:
        return "decided_different"
    checks = (
        ("different_id", a.id, b.id),
        ("different_masked_id", a.ps, b.ps),
        ("different_birth", a.birth, b.birth),
        ("different_birth", a.ym, b.ym),
        ("different_sex", a.sex, b.sex),
    )
    for reason, left, right in checks:
        if left and right and left != right:
            return reason
    if a.scopes & b.scopes:
        return "same_roster"
    return "too_young" if _too_young(a, b) or _too_young(b, a) else None


def _too_young(a: Profile, b: Profile) -> bool:
    """True when ``b``'s birth is later than ``a``'s records allow (a card holder who is a baby)."""
    if not a.born_by:
        return False
    if b.birth:
        return b.birth > a.born_by
    return bool(b.ym) and b.ym > a.born_by[:7]


PROFILE_COLUMNS = ("id_full", "id_ps", "birth", "birth_ym", "sex", "scope", "born_by")


def gathered_profiles(records: pa.Table, uids: np.ndarray) -> list[Profile]:
    """The `Profile` of each uid, in the order given (gathered column-wise, then read in sequence)."""
    index = pa.array(uids, pa.int64())
    cols = [records[c].take(index).to_pylist() for c in PROFILE_COLUMNS]
    apart = (
        records["apart"].take(index).to_pylist() if "apart" in records.column_names else [None] * len(uids)
    )
    return [
        Profile(i, p, b, y, s, frozenset((scope,)) if scope else frozenset(), bound, frozenset(away or ()))
        for i, p, b, y, s, scope, bound, away in zip(*cols, apart, strict=True)
    ]


def cluster_profiles(records: pa.Table, cluster: np.ndarray, labels: set[int]) -> dict[int, Profile]:
    """The whole `Profile` of each cluster in ``labels``."""
    members = np.flatnonzero(np.isin(cluster, np.fromiter(labels, np.int64, len(labels))))
    profiles: dict[int, Profile] = {}
    for uid, profile in zip(members.tolist(), gathered_profiles(records, members), strict=True):
        label = int(cluster[uid])
        profiles[label] = profiles[label].merged(profile) if label in profiles else profile
    return profiles


def join_pairs(cluster: np.ndarray, profiles: dict[int, Profile], pairs: list[tuple[int, int]]) -> np.ndarray:
    """Union the clusters of each pair, in order, unless their whole profiles `conflict`; returns new labels."""
    profiles = dict(profiles)
    parent = {label: label for label in profiles}

    def find(label: int) -> int:
        while parent[label] != label:
            label = parent[label]
        return label

    for a, b in pairs:
        ra, rb = find(int(cluster[a])), find(int(cluster[b]))
        if ra != rb and conflict(profiles[ra], profiles[rb]) is None:
            keep, gone = min(ra, rb), max(ra, rb)
            parent[gone] = keep
            profiles[keep] = profiles[keep].merged(profiles.pop(gone))
    relabel = {label: find(label) for label in parent}
    return np.array([relabel.get(c, c) for c in cluster.tolist()], np.int64)


def home_mask(records: pa.Table) -> np.ndarray:
    """Per record, whether its address is a home (``is_home``). Every stream sets it
    (`records.PersonStream.address_is_home`); were it missing, the record counts as a home in both rules
    that read this (`flatmates`, `reporters.join_phone_reporters`), the choice that errs towards keeping
    people apart: such a record is never an incident-only seeker, and it counts as a namesake of its flat
    (it can hold a name-only link back or block a reporter's phone join)."""
    return np.asarray(pc.fill_null(records["is_home"], True), bool)
