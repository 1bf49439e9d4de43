"""An incident reported away from home: its reporter is the street's one person of that name, or unknown.

A grid incident names its reporter (``reporter_name``) and where it happened; the household rule
(`household.join_household`) joins it when that is the reporter's own flat. An incident elsewhere shares
only the name with its reporter, and the model rightly leaves it: a name alone is weak evidence, and a
person who lives elsewhere may report (a visitor, a shopkeeper, a passer-by). How weak depends on two
things this street's own records tell:

- **How common the name is.** A person is one of ``n`` people of the street with a name (every system's
  records that give a home — registry, 台账, door cards, civil rosters). Let ``S`` be how many of them
  bear the surname (pinyin) and ``G`` the given name: were names paired at random, ``S·G/n`` people
  would bear this one — the name's expected holders, and ``S·G/n²`` the chance that a person from
  elsewhere bears it. Rare surnames with rare given names are strong evidence; 张 with 伟 is weak.
- **How many of the reporters it decides on come from elsewhere.** The rule decides only on *seekers*:
  persons all of whose records are incidents, i.e. incidents that joined no home. They are not a sample
  of all reporters: a resident's incident at their own flat joins the household and is never a seeker,
  an outsider's never joins. On a street whose residents report at home (the source systems' sample:
  every named incident at the reporter's flat) nearly every seeker is an outsider, however few the
  outsiders among all incidents. So the share is estimated among the seekers themselves, one count per
  seeker person. A reporter from elsewhere bears a name nobody on the street has with probability
  ``q0`` (one minus the chance that a random pairing of the street's surnames and given names is a name
  somebody here holds); a resident seeker bears a held name (a homophone typo keeps the pinyin; any
  other misspelling only raises the bound). If ``u`` of the ``m`` seekers with a name name nobody of
  the street, about ``u / q0`` of them come from elsewhere; ``o = (u + 3) / (m · q0)`` is an upper
  bound on that share (three: the 95 % bound when none is seen). Few seekers give a wide bound and the
  rule falls silent: only a street whose incidents that joined no home mostly bear its residents'
  names lets a name alone count. The same follows from the share over all ``M`` named incidents: an
  outsider's incident is always a seeker, so the share among seekers is that share times ``M / m``.
  Counted over all incidents, as before #16's fifth pass, the residents' incidents at home diluted it:
  on such a street an outsider could join a resident at p ≈ 0.98.

For a reporter whose name (pinyin) exactly one person of the street bears, the odds that the reporter
is that person rather than someone from elsewhere are ``(1 - o) / (o · S·G/n)``. At odds of
`MIN_ODDS` (a probability of 0.999) or more, and when nothing contradicts (whole-cluster `conflict`:
a reporter is at least 16; and no phone on the incident that another person holds and this one does
not), the incident joins that person (``matched_by = 'street_reporter'``). Two persons of that name on
the street, however far apart, leave it alone: the name cannot say which. A street whose seekers
often name nobody there gets a high ``o`` and the rule falls silent.

Seekers are persons all of whose records are incidents (no home), after every other pass. Before this
rule, `join_phone_reporters` joins those whose incidents give the phone of the street's one person of
that name who holds it, however common the name: a number is not a name. Both rules are decided again
every run from that run's records (`links.STICKY_RULES` leaves them out): yesterday's join is not
evidence, and one made under an earlier, looser estimate of the outsiders must not outlive it.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.household import Key, flat_residents, keys_by_person, other_phone, phone_holders
from islandbridge.identity.profiles import among, cluster_profiles, conflict, home_mask, join_pairs

MIN_ODDS = 999.0  # a probability of 0.999 that the reporter is the street's one person of that name
UNSEEN = 3  # outsiders assumed beyond those seen: the 95 % upper bound of a share when none is observed
RULE = "street_reporter"
PHONE_RULE = "reporter_phone"


class NameCounts:
    """Who bears which name among the persons with a home on the street (one count per person)."""

    def __init__(self, records: pa.Table, cluster: np.ndarray, home: np.ndarray) -> None:
        uids = np.flatnonzero(home & np.asarray(pc.is_valid(records["pinyin_key"]), bool))
        index = pa.array(uids, pa.int64())
        rows = pa.table(
            {
                "pinyin": records["pinyin_key"].take(index),
                "surname": pc.fill_null(records["surname_pinyin"].take(index), ""),
                "given": pc.fill_null(records["given_pinyin"].take(index), ""),
                "label": pa.array(cluster[uids]),
                "uid": index,
            }
        )
        self.people = len(np.unique(cluster[uids]))
        self.surname = _distinct_labels(rows, "surname")
        self.given = _distinct_labels(rows, "given")
        # pinyin -> {person: its first uid of that name}, names and persons in the order their first
        # records come (the order `unheld_chance` sums in)
        self.holders: dict[str, dict[int, int]] = {}
        firsts = rows.group_by(["pinyin", "label"]).aggregate([("uid", "min")])
        pinyin_first = firsts.group_by("pinyin").aggregate([("uid_min", "min")])
        firsts = firsts.join(pinyin_first, "pinyin").sort_by(
            [("uid_min_min", "ascending"), ("uid_min", "ascending")]
        )
        for pinyin, label, uid in zip(
            *(firsts[c].to_pylist() for c in ("pinyin", "label", "uid_min")), strict=True
        ):
            self.holders.setdefault(pinyin, {})[label] = uid
        # each name's split (surname, given name) as its first record gives it
        heads = pa.array(np.searchsorted(uids, pinyin_first["uid_min_min"].to_numpy()), pa.int64())
        splits = zip(
            rows["surname"].take(heads).to_pylist(), rows["given"].take(heads).to_pylist(), strict=True
        )
        self.parts: dict[str, tuple[str, str]] = dict(
            zip(pinyin_first["pinyin"].to_pylist(), splits, strict=True)
        )

    def expected(self, pinyin: str, surname: str, given: str) -> float:
        """How many of the street's people would bear this name if names were paired at random."""
        if not self.people:
            return float("inf")
        return self.surname.get(surname, 0) * self.given.get(given, 0) / self.people

    def unheld_chance(self) -> float:
        """The chance that a random pairing of the street's surnames and given names is nobody's name."""
        if not self.people:
            return 1.0
        held = sum(self.expected(p, *self.parts[p]) for p in self.holders) / self.people
        return max(0.0, 1.0 - held)


def _distinct_labels(rows: pa.Table, column: str) -> dict[str, int]:
    """How many persons (labels) bear each value of ``column``."""
    counted = rows.group_by(column).aggregate([("label", "count_distinct")])
    return dict(zip(counted[column].to_pylist(), counted["label_count_distinct"].to_pylist(), strict=True))


def outsider_share(pinyins: list[str], names: NameCounts) -> float:
    """An upper bound on the share of seekers (``pinyins``: one name per seeker person) who live elsewhere
    (see above). Counted over the seekers, not all incidents: those are whom the rule decides on."""
    q0 = names.unheld_chance()
    if not pinyins or q0 <= 0:
        return 1.0
    unheld = sum(1 for p in pinyins if p not in names.holders)
    return min(1.0, (unheld + UNSEEN) / (len(pinyins) * q0))


def join_street_reporters(
    records: pa.Table, cluster: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Join each incident-only person to the street's one person of its reporter's name, when the odds
    (see the module) reach `MIN_ODDS` and nothing contradicts. Returns the new cluster of each record and
    the joins as (uid of the incident, uid of the person's record, ``'street_reporter'``). Deterministic:
    seekers are visited in label order."""
    cluster = np.asarray(cluster, np.int64).copy()
    if not records.num_rows:
        return cluster, []
    home = home_mask(records)
    incidents = np.flatnonzero(~home)
    if not len(incidents):
        return cluster, []
    seekers = _seekers(records, cluster, incidents, cluster[home])
    names = NameCounts(records, cluster, home)
    share = outsider_share([pinyin for _, pinyin, _ in seekers], names)
    if share >= 1.0:
        return cluster, []
    wanted = []
    for label, pinyin, keys in seekers:
        found = names.holders.get(pinyin, {})
        if len(found) != 1:
            continue
        # The run-together pinyin key can split two ways (冼明 xian|ming, 西安明 xi|anming): count the name
        # under the holder's split and the incident's, and take the commoner, so a split nobody on the
        # street has cannot make the name look unique.
        surname, given = _parts(records, keys[0][2])
        expected = max(names.expected(pinyin, surname, given), names.expected(pinyin, *names.parts[pinyin]))
        if (1 - share) < MIN_ODDS * share * expected:
            continue
        wanted.append((label, *next(iter(found.items())), keys))
    if not wanted:
        return cluster, []
    profiles = cluster_profiles(records, cluster, {w[0] for w in wanted} | {w[1] for w in wanted})
    phones = phone_holders(records, cluster, [k[2] for *_, keys in wanted for k in keys])
    joins = [
        (keys[0][2], uid, RULE)
        for label, person, uid, keys in wanted
        if conflict(profiles[label], profiles[person]) is None
        and not other_phone(records, label, keys, person, phones)
    ]
    if not joins:
        return cluster, []
    roots = join_pairs(cluster, profiles, [(a, b) for a, b, _ in joins])
    return roots, [j for j in joins if roots[j[0]] == roots[j[1]]]


def join_phone_reporters(
    records: pa.Table, cluster: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Join each incident-only person whose incidents give a phone to the one person of the street with a
    home who holds that phone and bears the reporter's name (pinyin), unless anything contradicts.

    A phone number names one line, not a crowd: a reporter from elsewhere does not give a resident's
    number, and a resident who gives the household's number is told apart by the name. The model weighs
    such a pair as it weighs any shared phone of a household, and against an incident away from home it
    stays below its threshold on a street of common names (30,000 residents: 封玉 reporting at another
    estate with the phone of the registry's 冯玉, p 0.979). With two holders of the number and the name
    (namesakes sharing a household phone) nothing happens; nor when the holder's flat has another person
    of the name with a home record (a sister 章梓萱 beside 章子轩, a son named after his father: only one
    of them may carry the household's number), nor when the incident and the holder both give an exact
    name and the two differ (the exact-name test of `flatmates`). The rule is decided again every run
    (`links.STICKY_RULES` leaves it out): a second holder of the number ends the join. Returns the new cluster of each record and the
    joins as (uid of the incident, uid of the person's record, ``'reporter_phone'``)."""
    cluster = np.asarray(cluster, np.int64).copy()
    home = home_mask(records)
    incidents = np.flatnonzero(~home)
    if not len(incidents):
        return cluster, []
    seekers = _seekers(records, cluster, incidents, cluster[home])
    numbers = {label: _numbers(records, keys) for label, _, keys in seekers}
    named = _named_holders(records, cluster, home, set().union(*numbers.values()) if numbers else set())
    sought = pa.array(sorted({pinyin for _, pinyin, _ in seekers}), records["pinyin_key"].type)
    flats = flat_residents(
        records, cluster, home & np.asarray(pc.fill_null(pc.is_in(records["pinyin_key"], sought), False))
    )
    names, houses = records["name_key"], records["house_key"]
    wanted = []
    for label, pinyin, keys in seekers:
        found = {(person, uid) for n in numbers[label] for person, uid in named.get((n, pinyin), ())}
        found = {(person, uid) for person, uid in found if person != label}
        if len({person for person, _ in found}) != 1:
            continue
        person = next(iter(found))[0]
        # the holder's flat holds another person of the name (a sister 章梓萱 beside 章子轩, a son named
        # after his father): the household's number may be either's
        if any(flats.get((houses[uid].as_py(), pinyin), {}).keys() - {person} for _, uid in found):
            continue
        # the exact name, when both sides give one (as `flatmates` compares namesakes)
        said = {names[uid].as_py() for _, _, uid in keys} - {None}
        held = {names[uid].as_py() for _, uid in found}
        if said and None not in held and not said & held:
            continue
        wanted.append((label, person, min(found)[1], keys))
    if not wanted:
        return cluster, []
    profiles = cluster_profiles(records, cluster, {w[0] for w in wanted} | {w[1] for w in wanted})
    joins = [
        (keys[0][2], uid, PHONE_RULE)
        for label, person, uid, keys in wanted
        if conflict(profiles[label], profiles[person]) is None
    ]
    if not joins:
        return cluster, []
    roots = join_pairs(cluster, profiles, [(a, b) for a, b, _ in joins])
    return roots, [j for j in joins if roots[j[0]] == roots[j[1]]]


def _numbers(records: pa.Table, keys: list[Key]) -> set[str]:
    return {n for _, _, uid in keys for n in records["phones"][uid].as_py() or ()}


def _named_holders(
    records: pa.Table, cluster: np.ndarray, home: np.ndarray, numbers: set[str]
) -> dict[tuple[str, str], set[tuple[int, int]]]:
    """(phone, pinyin) -> {(person, a home record of it with that pinyin)} for the persons holding one of
    ``numbers`` on any record; read only for those persons."""
    if not numbers:
        return {}
    lengths = pc.fill_null(pc.list_value_length(records["phones"]), 0).to_numpy(zero_copy_only=False)
    owners = np.repeat(np.arange(records.num_rows), lengths)
    flat = pc.list_flatten(records["phones"])
    hit = np.asarray(pc.is_in(flat, value_set=pa.array(sorted(numbers))), bool)
    by_person: dict[int, set[str]] = defaultdict(set)
    for uid, number in zip(owners[hit].tolist(), flat.filter(pa.array(hit)).to_pylist(), strict=True):
        by_person[int(cluster[uid])].add(number)
    members = np.flatnonzero(among(cluster, by_person) & home)
    pinyins = records["pinyin_key"].take(pa.array(members, pa.int64())).to_pylist()
    out: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)
    for uid, pinyin in zip(members.tolist(), pinyins, strict=True):
        if pinyin:
            person = int(cluster[uid])
            for number in by_person[person]:
                out[(number, pinyin)].add((person, uid))
    return out


def _seekers(
    records: pa.Table, cluster: np.ndarray, incidents: np.ndarray, homed: np.ndarray
) -> list[tuple[int, str, list[Key]]]:
    """(label, pinyin, its incidents) of each person all of whose records are incidents of one name."""
    keys = keys_by_person(records, cluster, incidents, homed)
    out = []
    for label in sorted(keys):
        pinyins = {k[1] for k in keys[label]}
        if len(pinyins) == 1 and None not in pinyins:
            out.append((label, pinyins.pop(), keys[label]))
    return out


def _parts(records: pa.Table, uid: int) -> tuple[str, str]:
    return records["surname_pinyin"][uid].as_py() or "", records["given_pinyin"][uid].as_py() or ""
