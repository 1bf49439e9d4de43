"""Rules that read a flat's household: who lives there, in every system, decides what a record can be.

Two passes run after the model's links and the sole-namesake pass (`clusters.build_clusters`), each
blocked by flat (``house_key``) and name (``pinyin_key``), so their cost grows with the records, never
with their square. Both join a *seeker* — a person the model left without its household — to exactly
one person of the flat, and never when anything contradicts (`profiles.conflict` on whole clusters).

**Incident reporter** (`matched_by = 'reporter'`). A grid incident names its reporter and the flat it
happened at; most incidents are reported by someone living there, often without a phone. The model
scores such a pair on the name and the place alone and, on a street whose households hold namesakes,
rightly stays below its threshold. What it cannot see is the flat's list of residents: when exactly
one person of that name (pinyin: 张伟 and 章伟 count as one name, so a homophone in the flat makes
two) has a home at that flat — in the registry, the grid's 台账 or on a door card — and nothing
contradicts (too young to report, a sex, a phone the incident gives that another person of the
street holds and this one does not), the reporter is that person. Two compatible persons of that
name in the flat (mother and daughter both 冯语嫣) leave the incident alone, with a
``several_namesakes`` review against each. A seeker here is a person all of whose records are
incidents (an incident's address is a place, not a home).

**Masked ID** (`matched_by = 'masked_id'`). The grid vendor masks ID numbers (``510104********0696``);
the region and the last four characters that remain agree with a different person's full number about
once in ten thousand. A person without a full number, whose masked number is known, joins the one
person of the same flat and name whose full number shows the same visible characters (and the same
birth date where the mask leaves it visible); with two such candidates, or none, nothing happens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.profiles import Profile, among, cluster_profiles, conflict, join_pairs

REVIEW_REASON = "several_namesakes"


def join_household(
    records: pa.Table, cluster: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, int, str]], list[tuple[int, int]]]:
    """Join incident reporters and masked-ID holders to the one person of their flat they can be.

    Returns the new cluster label of each record (the smallest label of the joined clusters), the joins
    as (uid of the seeker's record, uid of the person's record at that flat, ``'reporter'`` or
    ``'masked_id'``) and (uid, uid) pairs to review: an incident and each of two or more compatible
    namesakes in its flat. Deterministic: seekers are visited in label order, so a person two seekers name is joined to the first.
    """
    cluster = np.asarray(cluster, np.int64).copy()
    if not records.num_rows:
        return cluster, [], []
    flat = flat_residents(records, cluster, np.asarray(pc.fill_null(records["is_home"], False), bool))
    if not flat:
        return cluster, [], []
    seekers = [
        (label, how, keys, found)
        for label, how, keys in sorted(_reporters(records, cluster) + _masked(records, cluster))
        if (found := _candidates(label, keys, flat))
    ]
    if not seekers:
        return cluster, [], []
    labels = {s[0] for s in seekers} | {c for s in seekers for c in s[3]}
    profiles = cluster_profiles(records, cluster, labels)
    phones = phone_holders(records, cluster, [k[2] for s in seekers if s[1] == "reporter" for k in s[2]])
    joins, reviews = [], []
    for label, how, keys, found in seekers:
        if how == "reporter":
            fits = [
                c
                for c in sorted(found)
                if conflict(profiles[label], profiles[c]) is None
                and not other_phone(records, label, keys, c, phones)
            ]
        else:
            fits = [
                c
                for c in sorted(found)
                if _mask_fits(profiles[label], profiles[c]) and conflict(profiles[label], profiles[c]) is None
            ]
        if len(fits) == 1:
            joins.append((keys[0][2], found[fits[0]], how))
        elif how == "reporter" and len(fits) > 1:
            reviews += [(keys[0][2], found[c]) for c in fits]
    if not joins:
        return cluster, [], reviews
    roots = join_pairs(cluster, profiles, [(a, b) for a, b, _ in joins])
    return roots, [j for j in joins if roots[j[0]] == roots[j[1]]], reviews


Key = tuple[str, str, int]  # (house_key, pinyin_key, uid of the record that gives it)


def flat_residents(
    records: pa.Table, cluster: np.ndarray, home: np.ndarray
) -> dict[tuple[str, str], dict[int, int]]:
    """(flat, pinyin) -> {cluster: its first uid there} for the records ``home`` selects (those that give
    their flat as a home: each rule says which, and may narrow them) that have a flat and a name."""
    named = pc.and_(pc.is_valid(records["house_key"]), pc.is_valid(records["pinyin_key"]))
    uids = np.flatnonzero(home & np.asarray(named, bool))
    index = pa.array(uids, pa.int64())
    rows = pa.table(
        {
            "house": records["house_key"].take(index),
            "pinyin": records["pinyin_key"].take(index),
            "label": pa.array(cluster[uids]),
            "uid": index,
        }
    )
    firsts = rows.group_by(["house", "pinyin", "label"]).aggregate([("uid", "min")])
    flat: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for house, pinyin, label, uid in zip(
        *(firsts[c].to_pylist() for c in ("house", "pinyin", "label", "uid_min")), strict=True
    ):
        flat[(house, pinyin)][label] = uid
    return flat


def _reporters(records: pa.Table, cluster: np.ndarray) -> list[tuple[int, str, list[Key]]]:
    """Persons all of whose records are incidents (places, not homes), with each one's flat and name."""
    place = np.asarray(pc.invert(pc.fill_null(records["is_home"], True)), bool)
    return _keyed(records, cluster, np.flatnonzero(place), cluster[~place], "reporter")


def _masked(records: pa.Table, cluster: np.ndarray) -> list[tuple[int, str, list[Key]]]:
    """Persons without a full number but with a masked one, with the flats they live at and their name."""
    full = cluster[np.asarray(pc.is_valid(records["id_full"]), bool)]
    masked = np.asarray(pc.and_(pc.is_valid(records["id_ps"]), pc.is_null(records["id_full"])), bool)
    home = np.asarray(pc.fill_null(records["is_home"], False), bool)
    return _keyed(records, cluster, np.flatnonzero(masked & home), full, "masked_id")


def _keyed(
    records: pa.Table, cluster: np.ndarray, uids: np.ndarray, excluded: np.ndarray, how: str
) -> list[tuple[int, str, list[Key]]]:
    keys = keys_by_person(records, cluster, uids, excluded)
    found = {label: [k for k in ks if k[0] and k[1]] for label, ks in keys.items()}
    return [(label, how, ks) for label, ks in found.items() if ks]


def keys_by_person(
    records: pa.Table, cluster: np.ndarray, uids: np.ndarray, excluded: np.ndarray
) -> dict[int, list[Key]]:
    """``(house_key, pinyin_key, uid)`` of the records ``uids``, by person (cluster label), in ``uids``'
    order; persons in ``excluded`` (labels) left out, before anything is read. Nulls are kept: each rule
    says what it needs."""
    uids = uids[~among(cluster[uids], excluded)]
    index = pa.array(uids, pa.int64())
    keys: dict[int, list[Key]] = defaultdict(list)
    for house, pinyin, uid, label in zip(
        records["house_key"].take(index).to_pylist(),
        records["pinyin_key"].take(index).to_pylist(),
        uids.tolist(),
        cluster[uids].tolist(),
        strict=True,
    ):
        keys[label].append((house, pinyin, uid))
    return keys


def _candidates(
    label: int, keys: list[Key], flat: Mapping[tuple[str, str], dict[int, int]]
) -> dict[int, int]:
    """Other persons with a home at one of the seeker's flats under its name: cluster -> a uid there."""
    found: dict[int, int] = {}
    for house, pinyin, _ in keys:
        for other, uid in flat.get((house, pinyin), {}).items():
            if other != label:
                found.setdefault(other, uid)
    return found


def phone_holders(records: pa.Table, cluster: np.ndarray, uids: list[int]) -> dict[str, set[int]]:
    """Each phone number given on the records ``uids`` (the seekers', all `other_phone` asks about) ->
    the clusters holding it anywhere on the street."""
    phones = records["phones"]
    asked = pc.unique(pc.list_flatten(phones.take(pa.array(uids, pa.int64()))))
    lengths = pc.fill_null(pc.list_value_length(phones), 0).to_numpy(zero_copy_only=False)
    owners = np.repeat(cluster, lengths)
    numbers = pc.list_flatten(phones)
    hit = np.asarray(pc.fill_null(pc.is_in(numbers, value_set=asked), False), bool)
    holders: dict[str, set[int]] = defaultdict(set)
    for number, owner in zip(numbers.filter(pa.array(hit)).to_pylist(), owners[hit].tolist(), strict=True):
        holders[number].add(owner)
    return holders


def other_phone(
    records: pa.Table, label: int, keys: list[Key], candidate: int, holders: Mapping[str, set[int]]
) -> bool:
    """True when an incident gives a phone that another person holds and the candidate does not."""
    for _, _, uid in keys:
        for number in records["phones"][uid].as_py() or ():
            owners = holders.get(number, set()) - {label}
            if owners and candidate not in owners:
                return True
    return False


def _mask_fits(seeker: Profile, candidate: Profile) -> bool:
    """True when the candidate's full number shows the seeker's masked characters (region, last four)."""
    full = candidate.id
    return bool(seeker.ps and full and not full.startswith("P:") and full[:6] + full[-4:] == seeker.ps)
