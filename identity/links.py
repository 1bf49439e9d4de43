"""Which links made each person, and which of them a run keeps: the rule of every link, and sticky links.

A person is a cluster of records; each **link** between two of its records says which rule joined them:

- ``id`` — equal valid full ID numbers (`deterministic.id_links`);
- ``decision`` — a person decided the two are one (``islandbridge review decide … same``);
- ``probabilistic`` — the model's link, with its ``match_probability``;
- ``namesake`` — the sole-namesake pass (`namesakes.join_sole_namesakes`);
- ``reporter`` / ``masked_id`` — the household pass (`household.join_household`): an incident's reporter
  or a masked ID joined to the one fitting resident of the flat;
- ``roster`` — the roster pairing (`rosters.join_roster_pairs`): in a flat of namesakes, the grid's and
  the registry's one unpaired row of the name.

Links are written to ``core.identity_links`` (`store`) with a **fingerprint** of each end: a keyed MAC
(the ``person_key`` key) of the record's identifying fields (`FINGERPRINT_COLUMNS`: name, ID numbers,
birth, sex, phones, address, roster scope). No value can be read back from it; it only tells whether a
record's identifying fields changed since the link was made.

**Sticky links.** The clustering is recomputed every run, and a model link near the threshold can come
and go with things that are not evidence about the pair: the term frequencies of names move as other
records arrive, a new namesake in the flat turns a sole-namesake join into an ambiguity. A record whose
identifying fields did not change keeps its links, and a split needs contradicting evidence: every
previous ``probabilistic``, ``namesake``, ``reporter`` or ``masked_id`` link whose two ends are still present — with unchanged
fingerprints, or changed but still agreeing on name (or pinyin), birth date or ID number (a new phone,
a move) — is offered to the clustering again (`kept_links`), first and regardless of the threshold, the
evidence screen and the ambiguity rule, but under every hard constraint (`clusters.conflict`): a new
different valid ID number, a ``different`` decision, two birth dates or sexes still cut it, and so does
a record that no longer agrees on any identity field (a card given to someone else). ``id`` and ``decision`` links are not kept: the data and the
decisions give them again each run, or no longer do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.privacy.keys import Key
from islandbridge.privacy.pseudonymise import person_keys

RULES = (
    "id",
    "decision",
    "probabilistic",
    "namesake",
    "reporter",
    "masked_id",
    "roster",
    "reporter_phone",
    "street_reporter",
)
# Not ``reporter_phone``: it joins an incident to the one holder of its number and name, which a new record
# can change (a second holder appears), so the rule decides it again each run from that run's records. Nor
# ``roster``: it rests on the other namesakes' links in the flat, which a day can change. Nor
# ``street_reporter``: its odds rest on the street's seekers as a whole (`reporters.outsider_share`), and a
# join made under an earlier, looser estimate must not outlive it.
STICKY_RULES = ("probabilistic", "namesake", "reporter", "masked_id")
# Identifying fields (records.FEATURES). Not ``born_by``: it moves with the as-of date every day.
FINGERPRINT_COLUMNS = (
    "name_key",
    "pinyin_key",
    "id_full",
    "id_ps",
    "id_digits",
    "birth",
    "birth_ym",
    "sex",
    "phones",
    "house_key",
    "room_key",
    "community",
    "scope",
    "is_home",
    "registered",
)
KEPT_WEIGHT = 1.0e9  # a kept link sorts before every model link and has no rival within the margin


class Link(NamedTuple):
    """Two records (uids) of one person and the rule that joined them."""

    uid_l: int
    uid_r: int
    rule: str
    probability: float | None = None
    kept: bool = False  # carried over from an earlier run (both ends unchanged)


class Kept(NamedTuple):
    """Previous links offered again: uids, their probability (NaN for a namesake link) and rule."""

    left: np.ndarray
    right: np.ndarray
    probability: np.ndarray
    rule: list[str]

    def only(self, keep: np.ndarray) -> Kept:
        """The kept links where ``keep`` is True."""
        return Kept(
            self.left[keep],
            self.right[keep],
            self.probability[keep],
            [r for r, k in zip(self.rule, keep, strict=True) if k],
        )


def fingerprints(mac_key: Key, records: pa.Table) -> list[str]:
    """A keyed fingerprint of each record's identifying fields (``fp_`` + 16 hex digits)."""
    keys = person_keys(mac_key, fingerprint_texts(records))
    return pc.binary_join_element_wise("fp_", pc.utf8_slice_codeunits(keys, 3, 19), "").to_pylist()


def fingerprint_texts(records: pa.Table) -> pa.Array:
    """What a fingerprint is the MAC of: ``fingerprint``, then the `repr` of each identifying field's
    value, joined by U+001F. Written column by column (`_reprs`): every record of the street is
    fingerprinted every run, and one Python ``repr`` per field and record was seconds at 300,000."""
    columns = [_reprs(records[c]) for c in FINGERPRINT_COLUMNS if c in records.column_names]
    if not columns:
        return pa.array(["fingerprint\x1f"] * records.num_rows, pa.string())
    return pc.binary_join_element_wise("fingerprint", *columns, "\x1f")


# The characters `repr` writes as they are between single quotes: printable ASCII but the quote and the
# backslash, and the CJK ideographs of Unicode 11. A value with any other character is written by `repr`.
_PLAIN = r"^[ -&(-\[\]-~\x{4e00}-\x{9fef}]*$"


def _reprs(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``repr`` of each value: strings, booleans and lists of strings column-wise, anything else by
    ``repr`` itself."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_string(kind):
        out = _quoted(array)
    elif pa.types.is_boolean(kind):
        out = pc.if_else(array, "True", "False")
    elif pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
        offsets = pa.array(np.r_[0, np.cumsum(lengths)], pa.int32())
        items = pa.ListArray.from_arrays(offsets, _reprs(pc.list_flatten(array)), mask=array.is_null())
        out = pc.binary_join_element_wise("[", pc.binary_join(items, ", "), "]", "")
    else:
        return pa.array([repr(v) for v in array.to_pylist()], pa.string())
    return pc.fill_null(out, "None")


def _quoted(strings: pa.Array) -> pa.Array:
    """``repr`` of each string (nulls stay null): between single quotes, or `repr`'s own where it escapes."""
    out = pc.binary_join_element_wise("'", strings, "'", "")
    odd = pc.invert(pc.fill_null(pc.match_substring_regex(strings, _PLAIN), True))
    if pc.any(odd).as_py():
        escaped = [repr(v) for v in strings.filter(odd).to_pylist()]
        out = pc.replace_with_mask(out, odd, pa.array(escaped, pa.string()))
    return out


def kept_links(
    previous: pd.DataFrame,
    records: pa.Table,
    prints: Sequence[str],
    still_agree: Callable[[pa.Table, np.ndarray, np.ndarray], np.ndarray] | None = None,
    ends: tuple[np.ndarray, np.ndarray] | None = None,
) -> Kept:
    """The previous sticky links (``core.identity_links`` rows) to offer again: both ends present, and
    either both unchanged (same fingerprints) or, where ``still_agree`` is given (the clustering's
    `clusters.identity_evidence`), changed but still agreeing on name, birth date or ID number — a new
    phone or a move is changed evidence, not contradicting evidence; a new name is.

    ``ends``: `link_uids` of ``previous``, when the run already has them."""
    rows = previous["rule"].isin(STICKY_RULES).to_numpy()
    sticky = previous[rows]
    ends = [end[rows] for end in (ends or link_uids(previous, records))]
    present = ~np.isnan(ends[0]) & ~np.isnan(ends[1])
    left, right = (end[present].astype(np.int64) for end in ends)
    sticky = sticky[present]
    marks, keep = np.asarray(prints, dtype=object), np.ones(len(left), bool)
    for side, at in (("l", left), ("r", right)):
        keep &= marks[at] == sticky[f"fingerprint_{side}"].astype(object).fillna("").to_numpy()
    prob = sticky["match_probability"].to_numpy(np.float64, na_value=np.nan)
    rules = sticky["rule"].tolist()
    if still_agree is not None and len(left):
        keep |= np.asarray(still_agree(records, left, right), bool)
    return Kept(
        left[keep],
        right[keep],
        prob[keep],
        [r for r, k in zip(rules, keep, strict=True) if k],
    )


def link_uids(links: pd.DataFrame, records: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The uid of each link's left and right end in ``records`` (NaN: gone), both sides in one join: the
    kept links and the churn's changed fingerprints (`churn.prints_changed`) both read them."""
    systems = pd.concat([links["system_l"], links["system_r"]], ignore_index=True)
    record_keys = pd.concat([links["record_key_l"], links["record_key_r"]], ignore_index=True)
    uids = uids_of(records, systems, record_keys)
    return uids[: len(links)], uids[len(links) :]


def uids_of(records: pa.Table, systems: pd.Series, record_keys: pd.Series) -> np.ndarray:
    """The uid of each (system, record key) in ``records``, NaN where absent (a hash join in Arrow: the
    previous links' ends are most of the street's records)."""
    index = pa.table(
        {
            "system": records["system"],
            "record_key": records["record_key"],
            "uid": pa.array(np.arange(records.num_rows, dtype=np.int64)),
        }
    )
    wanted = pa.table(
        {
            "system": _strings(systems),
            "record_key": _strings(record_keys),
            "row": pa.array(np.arange(len(systems), dtype=np.int64)),
        }
    )
    found = wanted.join(index, ["system", "record_key"], join_type="left outer")
    out = np.full(len(systems), np.nan)
    out[found["row"].to_numpy()] = found["uid"].to_numpy(zero_copy_only=False)
    return out


def _strings(values: pd.Series) -> pa.Array:
    """A Series of strings (missing: null) as Arrow strings; an Arrow-backed one without a Python object
    per value (the previous links' ends are most of the street's records)."""
    return pa.array(
        values.array if isinstance(values.dtype, pd.StringDtype) else values.astype(object), pa.string()
    )


def with_kept(candidates, kept: Kept | None):
    """Link candidates (uid_l, uid_r, weight, probability) with the kept links first; a model candidate
    for a kept pair goes (the kept link stands for it)."""
    if kept is None or not len(kept.left):
        return candidates
    left, right, weight, prob = candidates
    fresh = ~is_in_sorted(pair_codes(left, right), np.sort(pair_codes(kept.left, kept.right)))
    return (
        np.concatenate([kept.left, left[fresh]]),
        np.concatenate([kept.right, right[fresh]]),
        np.concatenate([np.full(len(kept.left), KEPT_WEIGHT), weight[fresh]]),
        np.concatenate([np.nan_to_num(kept.probability, nan=1.0), prob[fresh]]),
    )


def pair_codes(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """One integer per unordered pair of uids (uids are below 2**31), to compare pairs in bulk."""
    left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
    return np.minimum(left, right) << 32 | np.maximum(left, right)


def is_in_sorted(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """``np.isin(values, ordered)`` for a sorted ``ordered``, by binary search (no sort of both)."""
    if not len(ordered):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    return ordered[at] == values


def typed_links(
    id_edges: np.ndarray,
    decided: np.ndarray | None,
    model: Iterable[tuple[int, int, float]],
    namesakes: Iterable[tuple[int, int]],
    kept: Kept | None = None,
    household: Iterable[tuple[int, int, str]] = (),
) -> list[Link]:
    """Every link of a clustering with its rule; a kept pair says the rule it was first made by."""
    links = [Link(int(a), int(b), "id", 1.0) for a, b in id_edges.reshape(-1, 2).tolist()]
    if decided is not None:
        links += [Link(int(a), int(b), "decision") for a, b in decided.reshape(-1, 2).tolist()]
    model = list(model)
    for (a, b, p), (rule, first) in zip(model, _first_rules(kept, model), strict=True):
        links.append(Link(a, b, rule, first, True) if rule else Link(a, b, "probabilistic", float(p)))
    links += [Link(int(a), int(b), "namesake") for a, b in namesakes]
    return links + [Link(int(seeker), int(resident), how) for seeker, resident, how in household]


def _first_rules(
    kept: Kept | None, model: list[tuple[int, int, float]]
) -> list[tuple[str | None, float | None]]:
    """For each model link, the rule and probability a kept link of that pair was first made with, or
    (None, None); of a pair kept twice, the later one. Looked up in bulk: on a day
    without change nearly every link is a kept one."""
    if kept is None or not len(kept.left) or not model:
        return [(None, None)] * len(model)
    codes = pair_codes(kept.left, kept.right)
    order = np.argsort(codes, kind="stable")
    ends = np.array([(a, b) for a, b, _ in model], np.int64).reshape(-1, 2)
    wanted = pair_codes(ends[:, 0], ends[:, 1])
    at = np.searchsorted(codes[order], wanted, side="right") - 1  # the last of equal codes
    found = (at >= 0) & (codes[order][np.maximum(at, 0)] == wanted)
    which = np.where(found, order[np.maximum(at, 0)], -1).tolist()
    probability = kept.probability.tolist()
    isnan = math.isnan  # on a Python float; numpy's ufunc per element was ~0.6 s at 300,000
    return [
        (kept.rule[i], None if isnan(probability[i]) else probability[i]) if i >= 0 else (None, None)
        for i in which
    ]


def record_matches(n: int, links: Sequence[Link]) -> tuple[list[str], list[float | None]]:
    """Each record's ``matched_by`` (the strongest rule among its links, in the order of `RULES`; 'none'
    without a link) and its ``match_probability`` (1 with an ID link, else its strongest probabilistic
    link's, else None)."""
    rank = {rule: i for i, rule in enumerate(RULES)}
    best = np.full(n, len(RULES))
    probability = np.full(n, -np.inf)
    if links:
        uids = np.array([[link.uid_l for link in links], [link.uid_r for link in links]], np.int64)
        ranks = np.array([rank[link.rule] for link in links], np.int64)
        scores = np.array(
            [
                link.probability
                if link.rule in ("id", "probabilistic") and link.probability is not None
                else -np.inf
                for link in links
            ],
            np.float64,
        )
        for side in uids:
            np.minimum.at(best, side, ranks)
            np.maximum.at(probability, side, scores)
    names = [*RULES, "none"]
    matched_by = [names[i] for i in best.tolist()]
    return matched_by, [None if p == -np.inf else float(p) for p in probability.tolist()]


def links_table(records: pa.Table, links: Sequence[Link], prints: Sequence[str]) -> pa.Table:
    """The rows of ``core.identity_links`` for one run (without ``run_id``): each pair in record-key order
    ((system, record key) of the left end before the right's). Gathered column-wise: a street's links are
    most of its records."""
    ends = np.array([(link.uid_l, link.uid_r) for link in links], np.int64).reshape(-1, 2)
    left, right = pa.array(ends[:, 0]), pa.array(ends[:, 1])
    systems, keys = records["system"], records["record_key"]
    later = pc.or_(
        pc.less(systems.take(right), systems.take(left)),
        pc.and_(
            pc.equal(systems.take(right), systems.take(left)), pc.less(keys.take(right), keys.take(left))
        ),
    )
    first, second = pc.if_else(later, right, left), pc.if_else(later, left, right)
    marks = pa.array(prints, pa.string())
    return pa.table(
        {
            "system_l": systems.take(first),
            "record_key_l": keys.take(first),
            "system_r": systems.take(second),
            "record_key_r": keys.take(second),
            "rule": pa.array([link.rule for link in links], pa.string()),
            "match_probability": pc.round(pa.array([link.probability for link in links], pa.float64()), 6),
            "fingerprint_l": marks.take(first),
            "fingerprint_r": marks.take(second),
        }
    )
