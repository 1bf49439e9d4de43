"""Links with their rules, and sticky links: an unchanged record keeps its links; a contradiction cuts them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity.clusters import build_clusters, identity_evidence
from islandbridge.identity.decided import Decisions
from islandbridge.identity.links import (
    FINGERPRINT_COLUMNS,
    Kept,
    Link,
    fingerprint_texts,
    fingerprints,
    kept_links,
    links_table,
)
from tests.identity.strategies import IDS, pairs, record, table
from tests.privacy.helpers import mac_key

FLAT = "XQ001|1|1|101"


def _kept(*links: tuple[int, int, float, str]) -> Kept:
    left, right, prob, rules = zip(*links, strict=True)
    return Kept(np.array(left), np.array(right), np.array(prob, np.float64), list(rules))


def _pair_rows():
    return [
        record(0, name_key="张伟", house_key=FLAT, sex="M"),
        record(1, name_key="张伟", house_key=FLAT, phones=["+8613800138000"]),
    ]


def test_links_name_the_rule_that_made_them():
    rows = [record(0, name_key="张伟", id_full=IDS[0]), record(1, name_key="张伟", id_full=IDS[0])]
    rows.append(record(2, name_key="张伟", house_key=FLAT))
    found = build_clusters(table(rows), [(0, 1)], pairs([(1, 2, 0.995)]))
    assert set(found.links) == {Link(0, 1, "id", 1.0), Link(1, 2, "probabilistic", 0.995)}
    assert found.matched_by == ["id", "id", "probabilistic"]


def test_a_kept_link_holds_when_the_score_of_its_unchanged_pair_drops_below_the_threshold():
    """Term frequencies move with other records' changes: that is not evidence about this pair."""
    records = table(_pair_rows())
    fresh = build_clusters(records, [], pairs([(0, 1, 0.9)]))
    assert fresh.cluster[0] != fresh.cluster[1]  # from scratch the pair stays apart ...
    kept = build_clusters(records, [], pairs([(0, 1, 0.9)]), kept=_kept((0, 1, 0.991, "probabilistic")))
    assert kept.cluster[0] == kept.cluster[1]  # ... kept, it holds, with the probability it was made at
    assert kept.links == [Link(0, 1, "probabilistic", 0.991, True)]
    assert kept.matched_by == ["probabilistic", "probabilistic"] and kept.probability == [0.991, 0.991]
    assert not kept.reviews


def test_a_kept_namesake_link_stays_a_namesake_link():
    records = table(_pair_rows())
    found = build_clusters(records, [], pairs([]), kept=_kept((0, 1, np.nan, "namesake")))
    assert found.cluster == [0, 0] and found.links == [Link(0, 1, "namesake", None, True)]
    assert found.matched_by == ["namesake", "namesake"] and found.probability == [None, None]


def test_a_decision_different_cuts_a_kept_link():
    records = table(_pair_rows())
    found = build_clusters(
        records,
        [],
        pairs([(0, 1, 0.999)]),
        decisions=Decisions(different=((0, 1),)),
        kept=_kept((0, 1, 0.999, "probabilistic")),
    )
    assert found.cluster[0] != found.cluster[1]


def test_a_new_different_valid_id_number_cuts_a_kept_link():
    """Record 1 is now decided one person with a record holding another valid ID number than record 0."""
    rows = [*_pair_rows(), record(2, name_key="张伟", id_full=IDS[1])]
    rows[0]["id_full"] = IDS[0]
    records = table(rows)
    found = build_clusters(
        records,
        [],
        pairs([(0, 1, 0.999)]),
        decisions=Decisions(same=((1, 2),)),
        kept=_kept((0, 1, 0.999, "probabilistic")),
    )
    assert found.cluster[1] == found.cluster[2] != found.cluster[0]
    assert {r.reason for r in found.reviews} == {"different_id"}


def _previous(records, prints, rule="probabilistic") -> pd.DataFrame:
    data = links_table(records, [Link(0, 1, rule, 0.99)], prints).to_pandas()
    return data.assign(run_id="r1", ended_run=None)


def test_fingerprints_ignore_what_is_not_identifying_and_see_what_is():
    key = mac_key()
    rows = _pair_rows()
    before = fingerprints(key, table(rows))
    rows[0].update(born_by="2010-01-01", first_seen_run="r0", last_seen_run="r9")
    assert fingerprints(key, table(rows)) == before
    rows[1]["phones"] = ["+8613900139000"]
    after = fingerprints(key, table(rows))
    assert after[0] == before[0] and after[1] != before[1]
    # A fingerprint is a keyed hash: it never carries a phone's digits (a random key can put a short
    # run such as "138" in any hex string, so the whole number is what is looked for).
    assert all(p.startswith("fp_") for p in after)
    assert not any(digits in p for p in after for digits in ("13800138000", "13900139000"))


def test_only_links_whose_ends_are_unchanged_or_still_agree_are_kept():
    key = mac_key()
    rows = _pair_rows()
    records = table(rows)
    prints = fingerprints(key, records)
    assert len(kept_links(_previous(records, prints), records, prints).left) == 1
    assert not len(kept_links(_previous(records, prints, rule="id"), records, prints).left)
    rows[1]["house_key"] = "XQ001|1|1|102"  # a move: changed evidence, not contradicting evidence
    moved = table(rows)
    previous, now = _previous(records, prints), fingerprints(key, moved)
    assert not len(kept_links(previous, moved, now).left)  # unchanged ends only
    assert len(kept_links(previous, moved, now, identity_evidence).left) == 1  # the name still agrees
    rows[1].update(name_key="李娜", pinyin_key="lina")  # the card went to someone else
    renamed = table(rows)
    assert not len(kept_links(previous, renamed, fingerprints(key, renamed), identity_evidence).left)


ODD_TEXTS = [
    "",
    "it's",
    'say "hi"',
    "a\\b",
    "tab\there",
    "é",
    "\u00b7",
    "\U0001f600",
    "\u3000",
    "ab\x00",
    "'\"",
]


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.one_of(st.none(), st.sampled_from(ODD_TEXTS), st.text(max_size=6)), min_size=1),
    phones=st.lists(st.one_of(st.none(), st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=3))),
)
def test_fingerprint_texts_are_the_repr_of_every_field(texts, phones) -> None:
    """The column-wise texts equal ``repr`` of each value, joined: a fingerprint kept in
    ``core.identity_links`` must stay the same across a change of how it is computed."""
    n = len(texts)
    rows = [
        record(
            uid,
            name_key=texts[uid],
            community=texts[-uid - 1],
            scope=texts[(uid + 1) % n],
            phones=phones[uid] if uid < len(phones) else [],
            is_home=(None, True, False)[uid % 3],
        )
        for uid in range(n)
    ]
    records = table(rows)
    columns = [c for c in FINGERPRINT_COLUMNS if c in records.column_names]
    values = [records[c].to_pylist() for c in columns]
    want = ["fingerprint\x1f" + "\x1f".join(repr(v) for v in row) for row in zip(*values, strict=True)]
    assert fingerprint_texts(records).to_pylist() == want
    assert fingerprint_texts(records.slice(1)).to_pylist() == want[1:]


def test_links_table_writes_each_pair_in_record_key_order() -> None:
    """Each row's left end is the (system, record key) that sorts first, whatever the uids' order."""
    rows = [record(0), record(1), record(2), record(3)]
    rows[0].update(system="registry", record_key="k9")
    rows[1].update(system="grid", record_key="k1")
    rows[2].update(system="grid", record_key="k10")
    rows[3].update(system="grid", record_key="k2")
    records = table(rows)
    prints = ["fp_0", "fp_1", "fp_2", "fp_3"]
    links = [Link(0, 1, "probabilistic", 0.1234567), Link(3, 2, "namesake"), Link(1, 2, "id", 1.0)]
    data = links_table(records, links, prints).to_pylist()
    assert [(r["record_key_l"], r["record_key_r"]) for r in data] == [
        ("k1", "k9"),
        ("k10", "k2"),
        ("k1", "k10"),
    ]
    assert [(r["fingerprint_l"], r["fingerprint_r"]) for r in data] == [
        ("fp_1", "fp_0"),
        ("fp_2", "fp_3"),
        ("fp_1", "fp_2"),
    ]
    assert [r["match_probability"] for r in data] == [0.123457, None, 1.0]
    assert links_table(records, [], prints).num_rows == 0
