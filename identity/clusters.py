"""From links to persons: union-find with hard constraints, ambiguity detection and a review list.

Records joined by an equal full ID number form the first clusters. Scored pairs then join clusters,
strongest first, but only when

- the probability reaches the match threshold **and** the pair agrees on name, birth date or ID number
  (a shared phone or flat alone never links: that is what a household shares);
- the two clusters do not contradict each other (`conflict`): two different valid full ID numbers, two
  masked numbers that cannot be the same, two birth dates, two sexes, or two records of a roster that
  lists each person once (the grid's 台账, one month of a civil-affairs file, the registry's living
  rows), or a birth date too recent for a roster that only holds adults (`records.PersonStream`). This
  holds for the whole cluster, so a chain of links can never carry two ID numbers into one person;
- the record is not ambiguous: when one record links about equally well (`AMBIGUITY_MARGIN`) to two
  persons that contradict each other — a card holder 宋雨欣 in a flat where mother and daughter share
  that name and a phone — it is linked to neither, nor to anyone it links to less well (the mother's
  registry row that lacks the phone is no better a choice than the two it could not choose between).

A link on the name alone (no equal ID number, masked number or birth) in a flat whose home records show two
people of that name is held back and decided after the others, on whole persons (`flatmates`): it joins
when no third namesake of the flat could be one side (unless a phone rules it out) and the two share a
phone or one side contradicts every other namesake there. A kept link that has become such a link is
kept no more.

A last pass joins **sole namesakes** (`namesakes.join_sole_namesakes`): two persons that are each other's only
compatible namesake (pinyin) in one flat, or in one community when one has no address at all (a 高龄补贴
row names only its 所属社区), where the registry has a row of that name there, and that contradict each
other in nothing (``matched_by = 'namesake'``). The model rightly scores such a pair below the threshold:
a card holder whose name has a homophone typo, sharing only the flat with the registry's resident, looks
like a namesake there; it cannot see that the registry, listing every registered resident of the flat,
living or gone, lists no second person of that name. Without a registry row there is no such list (two
unregistered 尹皓轩 with a card each and no birth date may share a flat), so the pass leaves them apart.

In a flat where the registry lists two or more living people of one name, the **roster pairing**
(`rosters.join_roster_pairs`, ``matched_by = 'roster'``) joins the grid 台账 row and the living registry
row of that name that are left when every other namesake's two rows are one person; it runs before the
held-back links are decided (so they see it) and again after the sole-namesake pass.

Then the **household rules** (`household.join_household`): an incident whose reporter bears the name of
exactly one compatible person living at the incident's flat joins that person, and a masked ID number
joins the flat's one namesake whose full number shows it (``matched_by = 'reporter'`` / ``'masked_id'``).
An incident-only person joins the one person of the street who holds its phone under the reporter's name
(`reporters.join_phone_reporters`, ``matched_by = 'reporter_phone'``). The roster pairing and the household
rules then run again in turn until neither joins more. Last, an incident away from home joins the street's
one person of its reporter's name when the name is rare and the street's incidents that joined no home
seldom name outsiders (`reporters.join_street_reporters`, ``matched_by = 'street_reporter'``).

Everything not linked that came near is reported as a `Review` with its reason, for a person to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.decided import DecisionConflict, Decisions, hard_same, unkept, with_apart
from islandbridge.identity.flatmates import NamesakeFlats, join_flatmates
from islandbridge.identity.household import join_household
from islandbridge.identity.links import (
    KEPT_WEIGHT,
    Kept,
    Link,
    is_in_sorted,
    record_matches,
    typed_links,
    with_kept,
)
from islandbridge.identity.namesakes import join_sole_namesakes
from islandbridge.identity.probabilistic import MATCH_PROBABILITY
from islandbridge.identity.profiles import (
    Profile,
    conflict,
    could_conflict,
    gathered_profiles,
)
from islandbridge.identity.reporters import join_phone_reporters, join_street_reporters
from islandbridge.identity.rosters import join_roster_pairs
from islandbridge.identity.stays import SAME_ID, joined_by_id
from islandbridge.perf import collector_paused

AMBIGUITY_MARGIN = 10.0  # match weight (log2 of the Bayes factor) that separates a best link from a rival
REASONS = (
    "below_threshold",
    "no_identity_evidence",
    "ambiguous",
    "different_id",
    "different_masked_id",
    "different_birth",
    "different_sex",
    "same_roster",
    "too_young",
    "several_namesakes",
    "decided_different",
    "registered_together",
    SAME_ID,
)


@dataclass(frozen=True)
class Review:
    """A pair a person should look at: the records (by uid), the model's probability and the reason."""

    uid_l: int
    uid_r: int
    match_probability: float | None  # None: the pair was never scored (a namesake the pass could not choose)
    reason: str


@dataclass
class Clustering:
    """The persons found: a cluster id per record (its smallest uid), how each was matched, and reviews."""

    cluster: list[int]
    matched_by: list[str]  # links.RULES ('id', 'probabilistic', 'reporter', 'street_reporter', ...) or 'none'
    probability: list[float | None]
    reviews: list[Review] = field(default_factory=list)  # open pairs only: a decided pair is not asked again
    conflicts: list[DecisionConflict] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)  # every link that joined two records, with its rule


def build_clusters(
    records: pa.Table,
    id_edges: Iterable[tuple[int, int]],
    pairs: pa.Table,
    *,
    match_probability: float = MATCH_PROBABILITY,
    margin: float = AMBIGUITY_MARGIN,
    decisions: Decisions | None = None,
    kept: Kept | None = None,
    together: Sequence[tuple[int, int]] = (),
) -> Clustering:
    """Cluster ``records`` (uids 0..n-1) from ID edges and scored ``pairs`` (uid_l, uid_r, weight, prob).

    People's ``decisions`` (`Decisions`) are hard constraints: a ``same`` pair is a hard link, like an
    equal ID number (unless the two sides hold two different valid ID numbers); a ``different`` pair can
    never end in one person (a cannot-link, checked on whole clusters like every other `conflict`), unless
    hard links — equal ID numbers, ``same`` decisions — join it. What cannot be honoured is reported in
    ``conflicts``; a decided pair is never a review again. ``kept`` (`links.Kept`): previous links whose
    records did not change, tried first and beyond the threshold and the ambiguity rule, but never
    against a `conflict`. ``together`` (`stays.together`): register rows the records show are two people,
    cannot-links like a ``different`` decision, but reviewed (`stays.joined_by_id`) when one ID number joins.

    Deterministic: the same inputs give the same clusters and reviews. Pairs are screened in bulk; the
    order-dependent part (strongest link first, constraints checked on whole clusters) runs for each
    connected component of the candidate graph on its own, which gives the same result as one global
    pass and keeps the memory it touches small.
    """
    n = records.num_rows
    decided = decisions or Decisions()
    edges = np.array(sorted(id_edges), np.int64).reshape(-1, 2)
    id_components = connected_components(n, edges[:, 0], edges[:, 1])
    same, conflicts = hard_same(records, id_components, decided.same)
    hard = np.concatenate([edges, same])
    hard_components = connected_components(n, hard[:, 0], hard[:, 1]) if len(same) else id_components
    records = with_apart(records, decided.different, together)
    candidates, reviews = _screen(records, hard_components, pairs, match_probability)
    # a model link on the name alone where the flat holds two people of that name (`flatmates`): it takes
    # part in the ambiguity rule like any candidate, but is decided after the others, against the flat.
    # A kept link that is such a link now (a namesake's record appeared) is kept no more: its rule decides
    # it again, like a new link
    flats = NamesakeFlats(records)
    if kept is not None and len(kept.left):
        kept = kept.only(~flats.name_only(records, kept.left, kept.right))
    candidates = with_kept(candidates, kept)
    left, right, weight, prob = candidates
    fresh = weight < KEPT_WEIGHT  # kept links come first and are never held back: ask only of the others
    deferred = np.zeros(len(left), bool)
    deferred[fresh] = flats.name_only(records, left[fresh], right[fresh])
    components = connected_components(
        n, np.concatenate([hard[:, 0], left]), np.concatenate([hard[:, 1], right])
    )
    with collector_paused():
        cluster, links, more = _resolve_all(records, components, hard, candidates, deferred, margin)
    held = [(r.uid_l, r.uid_r, r.match_probability) for r in more if r.reason == "deferred"]
    cluster, rostered = join_roster_pairs(records, cluster)
    cluster, flatmates, undecided = join_flatmates(records, cluster, flats, held)
    links += flatmates
    more = [r for r in more if r.reason != "deferred"] + [Review(*r) for r in undecided]
    cluster, namesakes, several = join_sole_namesakes(records, cluster)
    undecided = [Review(a, b, None, "several_namesakes") for a, b in several]
    cluster, paired = join_roster_pairs(records, cluster)  # pairs the passes above completed
    rostered += paired
    cluster, household, several = join_household(records, cluster)
    cluster, phoned = join_phone_reporters(records, cluster)
    # they may complete a flat's namesakes: pair now, or the next run (keeping these links) would merge
    while (paired := join_roster_pairs(records, cluster))[1]:
        cluster, more_pairs = paired
        rostered += more_pairs
        cluster, joined, several = join_household(records, cluster)  # `several`: as the clusters stand now
        household += joined
    cluster, away = join_street_reporters(records, cluster)
    household += rostered + phoned + away
    undecided += [Review(min(a, b), max(a, b), None, "several_namesakes") for a, b in several]
    conflicts += unkept(decided.different, cluster, id_components)
    result = _result(cluster, edges, links, reviews + more + undecided, namesakes, same, kept, household)
    result.reviews += [Review(*r) for r in joined_by_id(together, id_components)]  # one person, joined
    asked = {(min(a, b), max(a, b)) for a, b in (*decided.same, *decided.different)}
    result.reviews = [
        r for r in result.reviews if (min(r.uid_l, r.uid_r), max(r.uid_l, r.uid_r)) not in asked
    ]
    result.conflicts = conflicts
    return result


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The smallest uid of each record's connected component under the edges (left[i], right[i])."""
    labels = np.arange(n, dtype=np.int64)
    if not len(left):
        return labels
    while True:
        low = np.minimum(labels[left], labels[right])
        new = labels.copy()
        np.minimum.at(new, left, low)
        np.minimum.at(new, right, low)
        new = new[new]  # pointer jumping: follow the label's own label
        if np.array_equal(new, labels):
            return labels
        labels = new


Candidates = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # uid_l, uid_r, weight, probability


def _screen(records: pa.Table, components: np.ndarray, pairs: pa.Table, threshold: float):
    """Split scored pairs into link candidates and reviews; pairs already joined by an ID number go."""
    left, right = pairs["uid_l"].to_numpy(), pairs["uid_r"].to_numpy()
    weight, prob = pairs["match_weight"].to_numpy(), pairs["match_probability"].to_numpy()
    apart = components[left] != components[right]
    below = prob < threshold
    evidence = identity_evidence(records, left, right)
    reviews = []
    for mask, reason in (
        (apart & below, "below_threshold"),
        (apart & ~below & ~evidence, "no_identity_evidence"),
    ):
        reviews += [
            Review(a, b, p, reason)
            for a, b, p in zip(left[mask].tolist(), right[mask].tolist(), prob[mask].tolist(), strict=True)
        ]
    keep = apart & ~below & evidence
    return (left[keep], right[keep], weight[keep], prob[keep]), reviews


def identity_evidence(records: pa.Table, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """`has_identity_evidence` of many pairs at once (uids into ``records``); agrees with `pair_evidence`."""
    lidx, ridx = pa.array(left, pa.int64()), pa.array(right, pa.int64())

    def sides(column: str):
        return records[column].take(lidx), records[column].take(ridx)

    def same(column: str) -> pa.ChunkedArray:
        return pc.fill_null(pc.equal(*sides(column)), False)

    names = pc.and_(
        pc.and_(*(pc.is_valid(s) for s in sides("name_key"))), pc.or_(same("name_key"), same("pinyin_key"))
    )
    both_full = pc.and_(*(pc.is_valid(s) for s in sides("id_full")))
    numbers = pc.if_else(both_full, same("id_full"), same("id_ps"))
    return np.asarray(pc.or_(pc.or_(names, same("birth")), numbers), dtype=bool)


def _resolve_all(
    records: pa.Table,
    components: np.ndarray,
    edges: np.ndarray,
    candidates: Candidates,
    deferred: np.ndarray,
    margin: float,
) -> tuple[np.ndarray, list, list[Review]]:
    """Run `_resolve` on every component with an edge; returns the cluster of each uid, links, reviews.
    A ``deferred`` candidate takes part in the ambiguity rule but is not linked: unless ambiguous or in
    conflict, it comes back as a `Review` with the reason ``deferred`` (for `flatmates.join_flatmates`).

    Most components are plain: no two of their records could ever `conflict` (`profiles.could_conflict`)
    and none of their links is held back. There no constraint and no rival can refuse a link, so `_resolve`
    would link every candidate and make the component one person: that is taken as it is, and only the
    other components are resolved one by one."""
    by_weight = np.lexsort((candidates[1], candidates[0], -candidates[2], components[candidates[0]]))
    left, right, weight, prob = (c[by_weight] for c in candidates)
    deferred = deferred[by_weight]
    cluster = np.arange(len(components), dtype=np.int64)
    order = np.argsort(components, kind="stable")  # uids of one component together, ascending
    sizes = np.bincount(components, minlength=len(components))
    busy = order[sizes[components[order]] > 1]
    if not len(busy):
        return cluster, [], []
    cluster[busy] = components[busy]  # a plain component is one person, labelled by its smallest uid
    tangled = np.union1d(_tangled(records, components, busy), components[left[deferred]])
    linked = ~is_in_sorted(components[left], tangled)
    busy = busy[is_in_sorted(components[busy], tangled)]
    reviews = []
    if len(busy):
        chosen, reviews = _resolve_tangled(
            records, cluster, components, busy, edges, (left, right, weight, prob), deferred, margin
        )
        linked[chosen] = True
    links = list(zip(left[linked].tolist(), right[linked].tolist(), prob[linked].tolist(), strict=True))
    return cluster, links, reviews


def _tangled(records: pa.Table, components: np.ndarray, busy: np.ndarray) -> np.ndarray:
    """The components (labels) among whose records some pair may `conflict`."""
    members = pa.table({"component": pa.array(components[busy]), "uid": pa.array(busy)})
    return could_conflict(records, members, ["component"])["component"].to_numpy()


def _resolve_tangled(
    records: pa.Table,
    cluster: np.ndarray,
    components: np.ndarray,
    busy: np.ndarray,
    edges: np.ndarray,
    candidates: Candidates,
    deferred: np.ndarray,
    margin: float,
) -> tuple[list[int], list[Review]]:
    """`_resolve` the components of ``busy`` (their uids, by component, ascending) one by one, in label
    order, and set their ``cluster``; returns the candidates (indices, strongest first) that linked and the
    reviews. ``candidates`` are sorted as `_resolve` takes them (by component, strongest first)."""
    left, right, weight, prob = candidates
    profiles = gathered_profiles(records, busy)
    position = np.full(len(components), -1, np.int64)
    position[busy] = np.arange(len(busy))
    starts = np.flatnonzero(np.r_[True, components[busy][1:] != components[busy][:-1]])
    ids = edges[position[edges[:, 0]] >= 0]
    id_groups = _group(components[ids[:, 0]], position[ids[:, 0]], position[ids[:, 1]])
    mine = np.flatnonzero(position[left] >= 0)
    cand_groups = _group(
        components[left[mine]],
        position[left[mine]],
        position[right[mine]],
        prob[mine],
        weight[mine],
        deferred[mine],
        mine,
    )
    chosen, reviews = [], []
    ends = [*starts[1:].tolist(), len(busy)]
    for start, end, comp in zip(starts.tolist(), ends, components[busy][starts].tolist(), strict=True):
        roots, found_links, found_reviews = _resolve(
            profiles[start:end], start, id_groups.get(comp, ()), cand_groups.get(comp, ()), margin
        )
        uids = busy[start:end]
        cluster[uids] = uids[roots]
        chosen += found_links
        reviews += [Review(int(busy[a]), int(busy[b]), p, reason) for a, b, p, reason in found_reviews]
    return chosen, reviews


def _group(component: np.ndarray, *columns: np.ndarray) -> dict[int, list[tuple]]:
    """Rows (tuples of ``columns``) grouped by ``component``, in their given order within a group."""
    if not len(component):
        return {}
    order = np.argsort(component, kind="stable")
    rows = list(zip(*(c[order].tolist() for c in columns), strict=True))
    keys = component[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]).tolist()
    ends = [*starts[1:], len(rows)]
    return {int(keys[s]): rows[s:e] for s, e in zip(starts, ends, strict=True)}


def _resolve(profiles: list[Profile], offset: int, id_edges, candidates, margin: float):
    """One component: ID unions, then ambiguity, then strongest-first links under the constraints.

    Positions are global (``offset`` is the component's first); ``candidates`` are (a, b, probability,
    weight, deferred, index). Returns each record's root position relative to the component, the indices
    of the candidates linked and the reviews (a, b, probability, reason).
    """
    uf = _UnionFind(profiles, offset)
    for a, b in id_edges:
        uf.union(a, b)
    fixed = {i: uf.find(i) for i in range(offset, offset + len(profiles))}
    # Kept links (`links.with_kept`) skip the ambiguity rule and take no part in it: a model link stays as
    # ambiguous as it would be from scratch, so an unchanged day links what the day before linked.
    rivals = _rival_links(uf, fixed, [c for c in candidates if c[3] < KEPT_WEIGHT], margin)
    links, reviews = [], []
    for a, b, p, weight, deferred, at in candidates:
        if weight < KEPT_WEIGHT and ((a, fixed[b]) in rivals or (b, fixed[a]) in rivals):
            reviews.append((a, b, p, "ambiguous"))
            continue
        ra, rb = uf.find(a), uf.find(b)
        reason = None if ra == rb else conflict(uf.profile[ra], uf.profile[rb])
        if reason or deferred:
            reviews.append((a, b, p, reason or "deferred"))
        else:
            uf.union(a, b)
            links.append(at)
    roots = [uf.find(i) - offset for i in range(offset, offset + len(profiles))]
    return roots, links, reviews


def _rival_links(uf: _UnionFind, fixed: dict[int, int], candidates, margin: float) -> set[tuple[int, int]]:
    """(record, ID-cluster) links to drop: the record matches rival persons about equally well."""
    targets: dict[int, dict[int, float]] = {}
    for a, b, _, weight, *_ in candidates:
        for rec, other in ((a, fixed[b]), (b, fixed[a])):
            best = targets.setdefault(rec, {})
            best[other] = max(weight, best.get(other, float("-inf")))
    drop = set()
    for rec, by_root in targets.items():
        if len(by_root) < 2:
            continue
        top = max(by_root.values())
        contenders = sorted(root for root, weight in by_root.items() if top - weight < margin)
        profiles = [uf.profile[root] for root in contenders]
        if any(conflict(p, q) for i, p in enumerate(profiles) for q in profiles[i + 1 :]):
            # every link of the record goes, not only the contenders': a weaker link to a third person
            # says less than the two it cannot choose between (a card holder of mother and daughter's
            # name and phone is not the mother because her registry row lacks the phone)
            drop.update((rec, root) for root in by_root)
    return drop


class _UnionFind:
    """Union-find over a component's positions ``offset..offset+n-1``; each root holds its `Profile`."""

    def __init__(self, profiles: list[Profile], offset: int) -> None:
        self.parent = {offset + i: offset + i for i in range(len(profiles))}
        self.profile = {offset + i: p for i, p in enumerate(profiles)}

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        self.profile[keep] = self.profile[keep].merged(self.profile.pop(gone))


def _result(
    cluster: np.ndarray,
    edges: np.ndarray,
    links: list,
    reviews: list[Review],
    namesakes: Iterable[tuple[int, int]] = (),
    decided: np.ndarray | None = None,
    kept: Kept | None = None,
    household: Iterable[tuple[int, int, str]] = (),
) -> Clustering:
    typed = typed_links(edges, decided, links, namesakes, kept, household)
    matched_by, probability = record_matches(len(cluster), typed)
    open_reviews = [r for r in reviews if cluster[r.uid_l] != cluster[r.uid_r]]
    return Clustering(cluster.tolist(), matched_by, probability, _dedupe(open_reviews), links=typed)


def _dedupe(reviews: list[Review]) -> list[Review]:
    seen: dict[tuple[int, int], Review] = {}
    for review in reviews:
        key = (min(review.uid_l, review.uid_r), max(review.uid_l, review.uid_r))
        seen.setdefault(key, review)
    return sorted(seen.values(), key=lambda r: (min(r.uid_l, r.uid_r), max(r.uid_l, r.uid_r)))
