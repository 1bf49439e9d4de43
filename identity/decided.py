"""People's decisions about pairs of records, as constraints of the clustering (`clusters.build_clusters`).

A person who compared two records (``islandbridge review``, `identity.review`) said they are one person
(``same``) or two (``different``). Here a decision is in uids of one run's record table:

- ``same`` is a hard link, like an equal valid ID number (`hard_same`), unless the persons it would join
  hold two different valid ID numbers — stronger evidence than a decision;
- ``different`` gives both records one token (`with_apart`, the ``apart`` column a `clusters.Profile`
  carries); two clusters sharing a token `conflict` (``decided_different``), so no link, chain of
  links or namesake join ever puts the two in one person. Only hard links skip that check; a
  ``different`` pair they join anyway is reported (`unkept`). Register rows the records show are two
  people (`stays.together`) are cannot-links of the same kind, with negative tokens
  (``registered_together``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Decisions:
    """What people decided about pairs of records (uids): one person (``same``), or two (``different``)."""

    same: tuple[tuple[int, int], ...] = ()
    different: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class DecisionConflict:
    """A decision the clustering could not honour, and the stronger evidence that prevailed (``reason``):
    ``different_id`` (a ``same`` pair with two valid ID numbers), ``same_id`` (a ``different`` pair with one
    valid ID number), ``decided_same`` (a ``different`` pair that other ``same`` decisions join)."""

    uid_l: int
    uid_r: int
    decision: str
    reason: str


def hard_same(
    records: pa.Table, id_components: np.ndarray, pairs: Iterable[tuple[int, int]]
) -> tuple[np.ndarray, list[DecisionConflict]]:
    """The ``same`` decisions that become hard links, and those refused: two different valid ID numbers
    (of the ID-linked persons the decisions join) are stronger evidence than a decision."""
    pairs = sorted((min(a, b), max(a, b)) for a, b in pairs)
    if not pairs:
        return np.empty((0, 2), np.int64), []
    id_full = records["id_full"]
    parent: dict[int, int] = {}
    number: dict[int, str | None] = {}

    def find(label: int) -> int:
        if label not in parent:
            parent[label], number[label] = label, id_full[label].as_py()  # an ID component shares one number
        while parent[label] != label:
            label = parent[label]
        return label

    kept, refused = [], []
    for a, b in pairs:
        ra, rb = find(int(id_components[a])), find(int(id_components[b]))
        if ra != rb and number[ra] and number[rb] and number[ra] != number[rb]:
            refused.append(DecisionConflict(a, b, "same", "different_id"))
            continue
        if ra != rb:
            keep, gone = min(ra, rb), max(ra, rb)
            parent[gone], number[keep] = keep, number[keep] or number[gone]
        kept.append((a, b))
    return np.array(kept, np.int64).reshape(-1, 2), refused


def with_apart(
    records: pa.Table, pairs: Iterable[tuple[int, int]], together: Iterable[tuple[int, int]] = ()
) -> pa.Table:
    """``records`` with an ``apart`` column: for each ``different`` pair, one token on both its records
    (a `Profile` holding a token of the other's cannot join it). ``together``: pairs the records show are
    two people (`stays.together`), given negative tokens, so that `conflict` names their reason."""
    tokens: dict[int, list[int]] = {}
    numbered = [*enumerate(sorted(pairs)), *((-1 - i, pair) for i, pair in enumerate(sorted(together)))]
    for token, (a, b) in numbered:
        tokens.setdefault(a, []).append(token)
        tokens.setdefault(b, []).append(token)
    if not tokens:
        return records
    column = [tokens.get(uid) for uid in range(records.num_rows)]
    return records.append_column("apart", pa.array(column, pa.list_(pa.int64())))


def unkept(pairs: Iterable[tuple[int, int]], cluster: np.ndarray, id_components: np.ndarray):
    """The ``different`` decisions that hard links overrode (the only unions not checked for conflicts)."""
    return [
        DecisionConflict(
            a, b, "different", "same_id" if id_components[a] == id_components[b] else "decided_same"
        )
        for a, b in sorted((min(a, b), max(a, b)) for a, b in pairs)
        if cluster[a] == cluster[b]
    ]
