"""Namesakes in one flat: where the records show two people of one name living at one flat, a link of that
name and flat must rest on more than the name.

The model scores a pair field by field, as if the fields were independent. In a flat the name is not
independent of the place: a mother and a daughter both 尹阳, a son named after his father, 章子轩 and
his sister 章梓萱 (one pinyin). A door card that gives only the name — and the household's phone —
scores name + flat (+ phone) with either of them, often above the threshold with one and below it with
the other (the phone on one side only), and the ambiguity rule (`clusters`) then sees no rival. What the
records can say is that the flat holds two people of that name: two of its home records that cannot be
one person (two rows of a roster that lists each person once — the grid's 台账, the registry's living
rows —, two valid ID numbers, two birth dates, two sexes, a birth too recent: `profiles.conflict` on
each record alone). In such a flat and name (`NamesakeFlats`), a model link that agrees on nothing but
the name — no equal full ID number, no consistent masked number, no equal birth date or month — is held
back (`NamesakeFlats.name_only`) and decided after the model's other links, on whole persons
(`join_flatmates`), strongest first, in rounds. It joins only when

- no third person of the flat with a home record of that name (pinyin; the exact name when the pair
  agrees on it exactly) could be one side: one that contradicts one side and not the other could be that
  other side, and one that contradicts neither could be either (two registry rows of 尹阳, born 1990 and
  2013, without phones: a name-only grid row and a door card that both give the household's number may
  be either of them, or one each). Such a namesake is a rival unless a phone rules it out: each side it
  could be shares a phone with the other side and none with it, while it gives one of its own. A
  household gives one number for all: the card of the 13-year-old 尹阳 carries the phone that the grid
  gives on the record of his namesake, a baby, and says nothing of which 尹阳 holds it;
- and the two persons share a phone, or, without one, one side contradicts every other namesake there
  (it can be nobody else of the name): two door cards of 顾明轩 with two numbers are any two of the
  flat's three 顾明轩.

Held-back links that do not join are reviewed as ``ambiguous``. Where the records show one person of the
name, nothing changes: an unregistered resident's door card still joins its 台账 record on the name and
the flat. A link kept from the previous run (`links.with_kept`) that is such a link now — a namesake's
record appeared since — is kept no more (`clusters.build_clusters`) and is held back like a new one.
Blocked by flat and name, and the held-back links are few, so linear in the records.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.profiles import (
    Profile,
    among,
    cluster_profiles,
    conflict,
    could_conflict,
    gathered_profiles,
    home_mask,
    relabelled,
)

Deferred = tuple[int, int, float]  # uid, uid, the model's probability


class NamesakeFlats:
    """The flats and names (``house_key``, ``pinyin_key``) where two home records cannot be one person."""

    def __init__(self, records: pa.Table) -> None:
        self.group: dict[int, int] = {}  # uid of any record at such a flat and name -> its group
        self.members: list[list[int]] = []  # the home records of each group
        if not records.num_rows:
            return
        keys = pa.table(
            {
                "house": records["house_key"],
                "pinyin": records["pinyin_key"],
                "uid": pa.array(np.arange(records.num_rows, dtype=np.int64)),
                "home": pa.array(home_mask(records)),  # a missing is_home counts as a home (`home_mask`)
            }
        ).filter(pc.and_(pc.is_valid(records["house_key"]), pc.is_valid(records["pinyin_key"])))
        homes = could_conflict(records, keys.filter(keys["home"]), ["house", "pinyin"])
        if not homes.num_rows:
            return
        grouped = (
            keys.join(homes, ["house", "pinyin"], join_type="inner")
            .group_by(["house", "pinyin"])
            .aggregate([("uid", "list"), ("home", "list")])
        )
        busy = [
            (uids, [u for u, h in zip(uids, home, strict=True) if h])
            for uids, home in zip(
                grouped["uid_list"].to_pylist(), grouped["home_list"].to_pylist(), strict=True
            )
        ]
        members = np.fromiter((u for _, home in busy for u in home), np.int64)
        profiles = dict(zip(members.tolist(), gathered_profiles(records, members), strict=True))
        for uids, home in busy:
            if any(conflict(profiles[a], profiles[b]) for i, a in enumerate(home) for b in home[i + 1 :]):
                self.group.update((u, len(self.members)) for u in uids)
                self.members.append(home)

    def name_only(self, records: pa.Table, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Per pair (uids), True when a record of it is at such a flat and name and the pair agrees on
        nothing but the name: no equal full ID number, no consistent masked number, no equal birth date
        or birth month."""
        grouped = np.fromiter(self.group, np.int64, len(self.group))
        out = np.isin(left, grouped) | np.isin(right, grouped)
        if not out.any():
            return out
        lidx, ridx = pa.array(left, pa.int64()), pa.array(right, pa.int64())

        def same(column: str) -> np.ndarray:
            equal = pc.equal(records[column].take(lidx), records[column].take(ridx))
            return np.asarray(pc.fill_null(equal, False), bool)

        return out & ~(same("id_full") | same("id_ps") | same("birth") | same("birth_ym"))


def join_flatmates(
    records: pa.Table, cluster: np.ndarray, flats: NamesakeFlats, held: list[Deferred]
) -> tuple[np.ndarray, list[Deferred], list[tuple[int, int, float, str]]]:
    """Decide the held-back links (`NamesakeFlats.name_only`), strongest first, on whole persons (see the
    module), in rounds while a round joins something. Returns the new cluster of each record, the links
    made and, for the others, (uid, uid, probability, reason): ``ambiguous``, or the `conflict` that
    kept them apart."""
    held = sorted(held, key=lambda d: (-d[2], d[0], d[1]))
    if not held:
        return cluster, [], []
    cluster = np.asarray(cluster, np.int64).copy()
    uids = {u for a, b, _ in held for u in (a, b)}
    groups = {flats.group[side] for a, b, _ in held for side in (a, b) if side in flats.group}
    uids |= {u for group in groups for u in flats.members[group]}
    labels = {int(cluster[u]) for u in uids}
    persons = _Persons(records, cluster, labels)
    order = sorted(uids)
    names = dict(zip(order, records["name_key"].take(pa.array(order, pa.int64())).to_pylist(), strict=True))
    links, out = [], []
    while held:  # rounds: a join can turn a rival into someone who contradicts, so retry what waited
        waiting = []
        for a, b, p in held:
            ra, rb = persons.find(int(cluster[a])), persons.find(int(cluster[b]))
            if ra == rb:
                continue
            reason = conflict(persons.profile[ra], persons.profile[rb])
            if reason:
                out.append((a, b, p, reason))
            elif _undecided(a, b, ra, rb, flats, persons, cluster, names):
                waiting.append((a, b, p))
            else:
                persons.union(ra, rb)
                links.append((a, b, p))
        if len(waiting) == len(held):
            out += [(a, b, p, "ambiguous") for a, b, p in waiting]
            break
        held = waiting
    cluster = relabelled(cluster, {label: persons.find(label) for label in labels})
    return cluster, links, out


def _undecided(
    a: int,
    b: int,
    ra: int,
    rb: int,
    flats: NamesakeFlats,
    persons: _Persons,
    cluster: np.ndarray,
    names: dict[int, str | None],
) -> bool:
    """True when the flat's other namesakes (persons with a home record at the flat and name of ``a`` or
    ``b``; of the exact name, when the pair agrees on it exactly) leave the pair undecided: one of them
    could be one side — it contradicts the other side and not this one, or neither side — and no phone
    rules it out (`_Persons.phone_rules_out`, for each side it could be); or the pair shares no phone and
    each side could still be one of them."""
    exact = names[a] is not None and names[a] == names[b]
    groups = {flats.group[side] for side in (a, b) if side in flats.group}
    others = {
        persons.find(int(cluster[c]))
        for g in groups
        for c in flats.members[g]
        if not exact or names[c] == names[a]
    }
    others -= {ra, rb}
    apart, rules_out = persons.apart, persons.phone_rules_out
    for c in others:
        if not apart(c, ra) and not apart(c, rb):  # could be either side: a rival unless a phone says not
            if not (rules_out(ra, rb, c) and rules_out(rb, ra, c)):
                return True
            continue
        for seeker, match in ((ra, rb), (rb, ra)):
            if apart(c, match) and not apart(c, seeker) and not rules_out(seeker, match, c):
                return True
    if persons.phones[ra] & persons.phones[rb]:
        return False
    return not (all(apart(c, ra) for c in others) or all(apart(c, rb) for c in others))


class _Persons:
    """Union-find over cluster labels, each root with its whole `Profile` and phones."""

    def __init__(self, records: pa.Table, cluster: np.ndarray, labels: set[int]) -> None:
        self.profile: dict[int, Profile] = cluster_profiles(records, cluster, labels)
        self.parent = {label: label for label in labels}
        members = np.flatnonzero(among(cluster, labels))
        self.phones: dict[int, frozenset[str]] = {label: frozenset() for label in labels}
        numbers = records["phones"].take(pa.array(members, pa.int64())).to_pylist()
        for uid, phones in zip(members.tolist(), numbers, strict=True):
            label = int(cluster[uid])
            self.phones[label] = self.phones[label] | frozenset(phones or ())

    def find(self, label: int) -> int:
        while self.parent[label] != label:
            label = self.parent[label]
        return label

    def union(self, ra: int, rb: int) -> None:
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        self.profile[keep] = self.profile[keep].merged(self.profile.pop(gone))
        self.phones[keep] = self.phones[keep] | self.phones.pop(gone)

    def apart(self, a: int, b: int) -> bool:
        return conflict(self.profile[a], self.profile[b]) is not None

    def phone_rules_out(self, seeker: int, match: int, rival: int) -> bool:
        """True when ``seeker`` shares a phone with ``match`` and none with ``rival``, who gives one."""
        mine = self.phones[seeker]
        return (
            bool(mine & self.phones[match]) and bool(self.phones[rival]) and not (mine & self.phones[rival])
        )
