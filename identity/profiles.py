"""What a person (a cluster of records) is known to be, and when two persons cannot be one.

A `Profile` holds at most one of each identifying value of a cluster (a valid full ID number, a masked
number's visible parts, a birth date or month, a sex), the rosters it appears in and the latest birth
date its records allow; `conflict` says why two profiles cannot be one person. Every pass that joins
clusters (`clusters`, `household`) checks whole profiles, so a chain of joins can never carry two ID
numbers, two birth dates or two sexes into one person.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    apart: frozenset[int] = frozenset()  # cannot-link tokens: one per decided or registered-together pair

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
    if shared := a.apart & b.apart:  # a person's decision (token ≥ 0), or rows registered together (< 0)
        return "decided_different" if max(shared) >= 0 else "registered_together"
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
    rosters: dict[str, frozenset[str]] = {}  # one frozenset per roster, not one per record
    return [
        Profile(
            i,
            p,
            b,
            y,
            s,
            (rosters.get(scope) or rosters.setdefault(scope, frozenset((scope,)))) if scope else _NONE,
            bound,
            frozenset(away) if away else _NONE,
        )
        for i, p, b, y, s, scope, bound, away in zip(*cols, apart, strict=True)
    ]


_NONE: frozenset = frozenset()
FIRST_OF = (
    "id_full",
    "id_ps",
    "birth",
    "birth_ym",
    "sex",
)  # a cluster's value: its first record's that has one


def cluster_profiles(records: pa.Table, cluster: np.ndarray, labels: set[int]) -> dict[int, Profile]:
    """The whole `Profile` of each cluster in ``labels``.

    The same as merging its records' profiles (`Profile.merged`) in uid order — the first value of each
    field in uid order, every roster, the earliest bound, every token apart — but gathered column by
    column: every pass after the model's links asks for the profiles of thousands of clusters, and one
    Profile per record, merged one by one, was most of their time."""
    members = np.flatnonzero(among(cluster, labels))
    if not len(members):
        return {}
    owner = cluster[members]
    order = np.argsort(owner, kind="stable")  # by cluster, uid order within one
    members, owner = members[order], owner[order]
    keys = owner[np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])]
    index = pa.array(members, pa.int64())
    firsts = [_first_value(records[c].take(index), owner, keys) for c in FIRST_OF]
    table = pa.table(
        {"owner": owner, "scope": records["scope"].take(index), "bound": records["born_by"].take(index)}
    )
    scopes = _per_owner(_truthy(table, "scope").group_by("owner").aggregate([("scope", "distinct")]), keys)
    bounds = _per_owner(_truthy(table, "bound").group_by("owner").aggregate([("bound", "min")]), keys)
    apart = _apart(records, index, owner)
    return {
        label: Profile(i, p, b, y, s, frozenset(scope) if scope else _NONE, bound, apart.get(label, _NONE))
        for label, i, p, b, y, s, scope, bound in zip(keys.tolist(), *firsts, scopes, bounds, strict=True)
    }


def among(values: np.ndarray, labels: Iterable[int]) -> np.ndarray:
    """``np.isin(values, labels)`` for cluster labels (non-negative integers), by a lookup table: one pass
    over the street's records instead of a sort of them."""
    wanted = np.asarray(labels, np.int64) if isinstance(labels, np.ndarray) else np.fromiter(labels, np.int64)
    values = np.asarray(values, np.int64)
    if not len(wanted) or not len(values):
        return np.zeros(len(values), bool)
    table = np.zeros(max(int(values.max()), int(wanted.max())) + 1, bool)
    table[wanted] = True
    return table[values]


def _truthy(table: pa.Table, column: str) -> pa.Table:
    """The rows whose ``column`` is neither null nor empty (what ``or`` and ``filter(None, …)`` keep)."""
    return table.filter(pc.fill_null(pc.greater(pc.binary_length(table[column]), 0), False))


def _first_value(values: pa.ChunkedArray, owner: np.ndarray, keys: np.ndarray) -> list:
    """Per cluster of ``keys`` (sorted), the first non-empty value of ``values`` (rows grouped by
    ``owner``, in uid order within a group), or None."""
    out: list = [None] * len(keys)
    rows = np.flatnonzero(np.asarray(pc.fill_null(pc.greater(pc.binary_length(values), 0), False), bool))
    if not len(rows):
        return out
    heads = rows[np.flatnonzero(np.r_[True, owner[rows][1:] != owner[rows][:-1]])]
    for at, value in zip(
        np.searchsorted(keys, owner[heads]).tolist(),
        values.take(pa.array(heads, pa.int64())).to_pylist(),
        strict=True,
    ):
        out[at] = value
    return out


def _per_owner(grouped: pa.Table, keys: np.ndarray) -> list:
    """The aggregate column of ``grouped`` (one row per owner, in any order) for each of ``keys``, or None."""
    out: list = [None] * len(keys)
    if grouped.num_rows:
        at = np.searchsorted(keys, grouped["owner"].to_numpy()).tolist()
        for i, value in zip(at, grouped.column(1).to_pylist(), strict=True):
            out[i] = value
    return out


def _apart(records: pa.Table, index: pa.Array, owner: np.ndarray) -> dict[int, frozenset[int]]:
    """The decision tokens of each cluster that has any (few do: one per ``different`` decision)."""
    if "apart" not in records.column_names:
        return {}
    tokens: dict[int, set[int]] = {}
    for label, away in zip(owner.tolist(), records["apart"].take(index).to_pylist(), strict=True):
        if away:
            tokens.setdefault(label, set()).update(away)
    return {label: frozenset(t) for label, t in tokens.items()}


def could_conflict(records: pa.Table, members: pa.Table, keys: list[str]) -> pa.Table:
    """The ``keys`` of the groups of ``members`` (rows: ``keys`` and ``uid``; keys never null) with two or
    more records among which some pair may `conflict`: two values of a field `conflict` compares, a roster
    twice, a birth after a bound, a decision apart. Only a cheap necessary condition (a group not returned
    can never hold a conflict, however its records are joined); the callers check the pairs of these groups.

    "Two values" is read as the smallest and the largest dictionary code of the field differing, "a roster
    twice" as two neighbours equal once the rows are sorted by group and roster, and the births against the
    bound by codes that keep the dates' order: each over the rows sorted by group, in numpy. Arrow's
    grouped aggregation of the same (13 aggregates under two string keys) was ~0.7 s a call on a 300,000
    street's records; grouped ``count_distinct`` before it ~1.2 s."""
    if not members.num_rows:
        return members.select(keys)
    group = _group_codes(members, keys)
    order = np.argsort(group, kind="stable")
    group = group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    index = pa.array(np.asarray(members["uid"], np.int64)[order], pa.int64())
    maybe = _rostered_twice(_codes(records["scope"].take(index)), group, starts)
    for name in _COMPARED:
        code = _filled(_codes(records[name].take(index)), -1)
        low = np.minimum.reduceat(np.where(code < 0, np.iinfo(np.int64).max, code), starts)
        high = np.maximum.reduceat(code, starts)
        maybe |= (high >= 0) & (low != high)
    maybe |= _late(records, index, starts)
    if "apart" in records.column_names:
        tokens = pc.fill_null(pc.list_value_length(records["apart"].take(index)), 0)
        maybe |= np.maximum.reduceat(np.asarray(tokens, np.int64), starts) > 0
    keep = maybe & (np.diff(np.r_[starts, len(group)]) >= 2)
    return members.select(keys).take(pa.array(order[starts[keep]], pa.int64()))


# The fields of which two values in one group may `conflict` (``scope`` is read apart: `_rostered_twice`).
_COMPARED = ("id_full", "id_ps", "birth", "birth_ym", "sex")


def _group_codes(members: pa.Table, keys: list[str]) -> np.ndarray:
    """One int64 per row of ``members``, equal where all ``keys`` are equal (keys never null)."""
    group = np.zeros(members.num_rows, np.int64)
    for key in keys:
        column = members[key]
        if pa.types.is_integer(column.type):
            values = np.asarray(column, np.int64)
            values = values - values.min() if len(values) else values
        else:
            values = _filled(_codes(column), 0)
        group = group * (int(values.max()) + 1 if len(values) else 1) + values
    return group


def _codes(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A dictionary code per value (equal values, equal codes; nulls stay null)."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):  # one dictionary for all chunks
        encoded = encoded.unify_dictionaries().combine_chunks()
    return encoded.indices


def _filled(codes: pa.Array, null: int) -> np.ndarray:
    return np.asarray(pc.fill_null(codes.cast(pa.int64()), null), np.int64)


def _rostered_twice(scope: pa.Array, group: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group (rows sorted by group, ``starts`` of each), whether some roster scope appears on two of
    its records."""
    code = _filled(scope, -1)
    rows = np.flatnonzero(code >= 0)
    rows = rows[np.lexsort((code[rows], group[rows]))]
    twice = rows[1:][(group[rows[1:]] == group[rows[:-1]]) & (code[rows[1:]] == code[rows[:-1]])]
    out = np.zeros(len(starts), bool)
    out[np.searchsorted(starts, twice, side="right") - 1] = True
    return out


def _late(records: pa.Table, index: pa.Array, starts: np.ndarray) -> np.ndarray:
    """Per group, whether its latest birth date (or birth month) is after the earliest bound (``born_by``;
    its month) of its records. Dates are compared as codes in their sorted order (`_ordered`)."""
    bound = records["born_by"].take(index)
    late = np.zeros(len(starts), bool)
    for born, limit in (
        (records["birth"].take(index), bound),
        (records["birth_ym"].take(index), pc.utf8_slice_codeunits(bound, 0, 7)),
    ):
        born, limit = _ordered(born, limit)
        earliest = np.minimum.reduceat(np.where(limit < 0, np.iinfo(np.int64).max, limit), starts)
        latest = np.maximum.reduceat(born, starts)
        # the month of the earliest bound is the earliest month of the bounds (a prefix keeps the order)
        late |= (latest >= 0) & (earliest != np.iinfo(np.int64).max) & (latest > earliest)
    return late


def _ordered(*columns: pa.Array) -> list[np.ndarray]:
    """Each column as codes into the sorted values of them all (nulls -1): the codes compare as the
    strings do."""
    values = pa.chunked_array([c for column in columns for c in _chunks(column)], pa.string())
    vocabulary = pc.drop_null(pc.unique(values))
    vocabulary = vocabulary.take(pc.sort_indices(vocabulary))
    return [_filled(pc.index_in(column, value_set=vocabulary), -1) for column in columns]


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


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
    return relabelled(cluster, {label: find(label) for label in parent})


def relabelled(cluster: np.ndarray, new: dict[int, int]) -> np.ndarray:
    """``cluster`` with each label in ``new`` replaced by its new label (labels are non-negative)."""
    cluster = np.asarray(cluster, np.int64)
    if not len(cluster):
        return cluster.copy()
    lookup = np.arange(max([int(cluster.max()), *new]) + 1, dtype=np.int64)
    lookup[np.fromiter(new, np.int64, len(new))] = np.fromiter(new.values(), np.int64, len(new))
    return lookup[cluster]


def home_mask(records: pa.Table) -> np.ndarray:
    """Per record, whether its address is a home (``is_home``). Every stream sets it
    (`records.PersonStream.address_is_home`); were it missing, the record counts as a home in both rules
    that read this (`flatmates`, `reporters.join_phone_reporters`), the choice that errs towards keeping
    people apart: such a record is never an incident-only seeker, and it counts as a namesake of its flat
    (it can hold a name-only link back or block a reporter's phone join)."""
    return np.asarray(pc.fill_null(records["is_home"], True), bool)
