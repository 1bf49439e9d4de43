"""Two lists of a flat's people, each naming everyone once: the last unpaired row of one is the other's.

The registry lists every registered resident of a flat, one living row each (``t_jm``, ``zt = 1``), and
the grid's 台账 lists each person it knows once (`records.PersonStream.distinct`). Where a flat holds
namesakes (mother and daughter both 冯语嫣: two living registry rows of one name), the model rightly
leaves a grid row that agrees with one of them on nothing but the name, the flat and perhaps the
household's phone — it could be either (`flatmates`). But when every other namesake's registry row is
already one person with a grid row of that name there (by an ID number, a masked number, a birth), the
two lists leave exactly one registry row and one grid row unpaired, and they are the same person: the
grid row cannot be a namesake it already lists, and the registry names no other.

`join_roster_pairs` (``matched_by = 'roster'``) joins them when, at one flat and name (pinyin):

- two or more persons have a living registry row there (two people of that name, proven by the register);
- exactly one of them has no grid row there, and exactly one person with a grid row there has no living
  registry row there;
- no other person there shows itself to be somebody else (a registry row that is not living — a
  namesake who moved out may be the grid's row —, a full ID number, a birth date or a roster row of its
  own, at this flat or anywhere else): door cards alone prove no person and do not stop it;
- the two do not both give an exact name that differs (a homophone of the name is not the name);
- the two do not `conflict` as whole persons, and they do not each give phones none of which they share
  (a phone is not proof, but two different numbers are a reason to let a person decide).

What could still make it wrong is a third namesake in the flat whom the registry does not list (a
floating resident) while the registered namesake is missing from the grid; every list of the flat must
then have missed somebody of that very name. Decided again every run (not a sticky rule): it rests on the
other namesakes' links, which a day can change. Blocked by flat and name, so linear in the records.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.profiles import among, cluster_profiles, conflict, home_mask, join_pairs

RULE = "roster"


def join_roster_pairs(
    records: pa.Table, cluster: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Join the one unpaired grid row and the one unpaired living registry row of a flat and name of
    namesakes (see the module). Returns the new cluster of each record and the joins as (uid of the grid
    row, uid of the registry row, ``'roster'``). Deterministic: flats and names in sorted order."""
    cluster = np.asarray(cluster, np.int64).copy()
    if not records.num_rows:
        return cluster, []
    wanted = [
        pair
        for _, persons in sorted(_places(records, cluster).items())
        if (pair := _unpaired(persons)) is not None
    ]
    if not wanted:
        return cluster, []
    labels = {int(cluster[u]) for pair in wanted for u in pair}
    profiles = cluster_profiles(records, cluster, labels)
    phones = _phones(records, cluster, labels)
    names = records["name_key"]
    joins = [
        (grid, registry, RULE)
        for grid, registry in wanted
        if conflict(profiles[int(cluster[grid])], profiles[int(cluster[registry])]) is None
        and not _other_phones(phones[int(cluster[grid])], phones[int(cluster[registry])])
        and not _other_names(names[grid].as_py(), names[registry].as_py())
    ]
    if not joins:
        return cluster, []
    roots = join_pairs(cluster, profiles, [(a, b) for a, b, _ in joins])
    return roots, [j for j in joins if roots[j[0]] == roots[j[1]]]


# What a person's home record at the place is: a living registry row, a grid 台账 row, something else that
# proves a person of its own (a gone registry row, a full ID number, a birth date, another roster's row),
# or a record that proves no person (a door card).
LIVING, LISTED, OTHER, BARE = "living", "listed", "other", "bare"


def _places(records: pa.Table, cluster: np.ndarray) -> dict[tuple[str, str], dict[int, dict[str, int]]]:
    """(flat, pinyin) -> {person: {kind: a uid of that kind}} over the home records with a flat and name,
    for the places with two or more living registry rows (found in bulk: only those are read one by one)."""
    home = home_mask(records) & np.asarray(
        pc.and_(pc.is_valid(records["house_key"]), pc.is_valid(records["pinyin_key"])), bool
    )
    keys = pa.table(
        {
            "house": records["house_key"],
            "pinyin": records["pinyin_key"],
            "uid": pa.array(np.arange(records.num_rows, dtype=np.int64)),
            "living": pc.and_(pc.fill_null(records["registered"], False), pc.is_valid(records["scope"])),
        }
    ).filter(pa.array(home))
    living = keys.filter(keys["living"]).group_by(["house", "pinyin"]).aggregate([("uid", "count")])
    busy = living.filter(pc.greater_equal(living["uid_count"], 2)).select(["house", "pinyin"])
    if not busy.num_rows:
        return {}
    uids = np.sort(keys.join(busy, ["house", "pinyin"], join_type="inner")["uid"].to_numpy())
    proving = _proving_persons(records, cluster)
    index = pa.array(uids, pa.int64())
    columns = ("house_key", "pinyin_key", "scope", "registered", "id_full", "birth", "birth_ym")
    values = [records[c].take(index).to_pylist() for c in columns]
    places: dict[tuple[str, str], dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for uid, (house, pinyin, scope, registered, full, birth, ym) in zip(
        uids.tolist(), zip(*values, strict=True), strict=True
    ):
        label = int(cluster[uid])
        kind = _kind(scope, registered, full or birth or ym)
        if kind == BARE and label in proving:  # a door card here of a person proven elsewhere
            kind = OTHER
        places[(house, pinyin)][label].setdefault(kind, uid)
    return places


def _proving_persons(records: pa.Table, cluster: np.ndarray) -> set[int]:
    """The persons with a record anywhere that proves a person of its own (a registry row, a roster row,
    a full ID number, a birth date): a door card at the flat of such a person is that person's, not a
    record that proves nobody."""
    proof = pc.fill_null(records["registered"], False)
    for column in ("scope", "id_full", "birth", "birth_ym"):
        proof = pc.or_(proof, pc.is_valid(records[column]))
    return set(np.unique(cluster[np.asarray(proof, bool)]).tolist())


def _kind(scope: str | None, registered: bool | None, proof: str | None) -> str:
    if registered:
        return LIVING if scope else OTHER  # a registry row without a roster scope is one that is not living
    if scope and ":" not in scope:  # a whole stream that lists each person once (the grid's 台账)
        return LISTED
    return OTHER if scope or proof else BARE


def _unpaired(persons: dict[int, dict[str, int]]) -> tuple[int, int] | None:
    """(uid of the grid row, uid of the registry row) of the place's one unpaired pair, or None."""
    living = [p for p, kinds in persons.items() if LIVING in kinds and LISTED not in kinds]
    listed = [p for p, kinds in persons.items() if LISTED in kinds and LIVING not in kinds]
    if len(living) != 1 or len(listed) != 1:
        return None
    others = [
        p
        for p, kinds in persons.items()
        if p not in (living[0], listed[0]) and not (LIVING in kinds and LISTED in kinds)
    ]
    if any(set(persons[p]) != {BARE} for p in others):
        return None
    return persons[listed[0]][LISTED], persons[living[0]][LIVING]


def _phones(records: pa.Table, cluster: np.ndarray, labels: set[int]) -> dict[int, set[str]]:
    members = np.flatnonzero(among(cluster, labels))
    phones: dict[int, set[str]] = {label: set() for label in labels}
    for uid, numbers in zip(
        members.tolist(), records["phones"].take(pa.array(members, pa.int64())).to_pylist(), strict=True
    ):
        phones[int(cluster[uid])].update(numbers or ())
    return phones


def _other_names(left: str | None, right: str | None) -> bool:
    """True when both give an exact name and the two differ (冯雨燕 and 冯玉燕 share the pinyin): a
    homophone may be a typo or another person, and the lists only rule out somebody of the same name
    (the exact-name test of `flatmates`)."""
    return left is not None and right is not None and left != right


def _other_phones(left: set[str], right: set[str]) -> bool:
    """True when both give phones and share none."""
    return bool(left and right and not left & right)
