"""Namesakes in one flat (`identity.flatmates`): where two home records of a flat and name cannot be one
person, a model link of that name and flat must rest on more than the name.

Each case gives the model's link (a probability above the threshold) and shows what the rule makes of
it; the first test's last lines show the same link joining when the flat holds one person of the name,
so the rule, not the model, is what keeps the namesakes apart. Every name and number is synthetic.
"""

from __future__ import annotations

import numpy as np

from islandbridge.identity.clusters import build_clusters
from islandbridge.identity.deterministic import id_links
from islandbridge.identity.links import Kept
from tests.identity.strategies import pairs, record, table

FLAT = "XQ003|12|1|1501"
GRID = "grid_platform/residents"
REGISTRY = "resident_registry/t_jm:current"
HOUSEHOLD, OWN, OTHER = "+8618606234883", "+8613900001111", "+8613900002222"


def _grid(uid, name="尹阳", pinyin="yinyang", **fields):
    return record(uid, name_key=name, pinyin_key=pinyin, house_key=FLAT, scope=GRID, **fields)


def _card(uid, name="尹阳", pinyin="yinyang", **fields):
    return record(uid, name_key=name, pinyin_key=pinyin, house_key=FLAT, **fields)


def _cluster(rows, links):
    records = table(rows)
    return build_clusters(records, id_links(records), pairs(links))


def test_a_card_with_the_households_phone_joins_neither_of_two_namesakes_in_the_flat():
    """The simulated street's two 尹阳 of one flat, a baby and a 13-year-old, each a 台账 row (so two
    people); the card is the older one's, with the number the grid gives on the baby's row. The model
    scores name + flat + phone with the baby's row (p ≈ 1) and name + flat alone, below its threshold,
    with the older one's: it would give the card to the baby."""
    rows = [_grid(0, phones=[HOUSEHOLD]), _grid(1), _card(2, phones=[HOUSEHOLD])]
    found = _cluster(rows, [(0, 2, 0.99999998), (1, 2, 0.9)])
    assert len(set(found.cluster)) == 3
    assert (0, 2, "ambiguous") in {(r.uid_l, r.uid_r, r.reason) for r in found.reviews}
    # one 尹阳 in the flat: the same link joins
    alone = _cluster(rows[:1] + [_card(1, phones=[HOUSEHOLD])], [(0, 1, 0.99999998)])
    assert alone.cluster[1] == alone.cluster[0]
    assert alone.matched_by[1] == "probabilistic"


def test_a_record_that_does_not_say_whether_it_is_a_home_counts_as_one():
    """``is_home`` missing on both 台账 rows: they still show two 尹阳 in the flat (`profiles.home_mask`)."""
    rows = [_grid(0, phones=[HOUSEHOLD], is_home=None), _grid(1, is_home=None), _card(2, phones=[HOUSEHOLD])]
    found = _cluster(rows, [(0, 2, 0.99999998), (1, 2, 0.9)])
    assert len(set(found.cluster)) == 3


def test_a_namesake_with_a_phone_of_its_own_is_no_rival():
    """The other 尹阳 gives another number: the card's number says which one it is."""
    rows = [_grid(0, phones=[OWN]), _grid(1, phones=[OTHER]), _card(2, phones=[OWN])]
    found = _cluster(rows, [(0, 2, 0.99999998), (1, 2, 0.9)])
    assert found.cluster[2] == found.cluster[0] != found.cluster[1]


def test_a_namesake_too_young_for_a_card_is_no_rival():
    """The other 尹阳 is a baby by the registry: a door-card holder is at least 8."""
    rows = [
        _grid(0, phones=[HOUSEHOLD]),
        _grid(1, birth="2026-01-24"),
        _card(2, phones=[HOUSEHOLD], born_by="2018-11-20"),
    ]
    found = _cluster(rows, [(0, 2, 0.99999998), (1, 2, 0.9)])
    assert found.cluster[2] == found.cluster[0] != found.cluster[1]


def test_a_homophone_sibling_is_no_rival_for_an_exact_name():
    """章子轩 and his sister 章梓萱 share a pinyin; a card of 章子轩 agrees exactly with his row only."""
    rows = [
        _grid(0, name="章子轩", pinyin="zhangzixuan", sex="M", phones=[HOUSEHOLD]),
        _grid(1, name="章梓萱", pinyin="zhangzixuan", sex="F"),
        _card(2, name="章子轩", pinyin="zhangzixuan", phones=[HOUSEHOLD]),
    ]
    found = _cluster(rows, [(0, 2, 0.9999)])
    assert found.cluster[2] == found.cluster[0] != found.cluster[1]


def test_two_cards_of_a_name_the_flat_holds_twice_stay_apart_without_a_shared_phone():
    """Two 顾明轩 in the flat (two 台账 rows) and two cards of that name with two numbers: the model's
    name + flat link between the cards would make one person of two."""
    rows = [
        _grid(0, name="顾明轩", pinyin="gumingxuan", phones=[OWN]),
        _grid(1, name="顾明轩", pinyin="gumingxuan"),
        _card(2, name="顾明轩", pinyin="gumingxuan", phones=[HOUSEHOLD]),
        _card(3, name="顾明轩", pinyin="gumingxuan", phones=[OTHER]),
    ]
    found = _cluster(rows, [(2, 3, 0.985)])
    assert found.cluster[2] != found.cluster[3]


def test_a_link_with_a_birth_date_is_not_held_back():
    """Identity evidence beyond the name decides as before: the card's holder gave a birth date, the one of
    the 台账 row it links to. Held back on the name alone, the other 台账 row (no birth, so it could be the
    card's holder) would make it ambiguous."""
    rows = [_grid(0, birth="2013-08-24"), _grid(1), _card(2, birth="2013-08-24")]
    found = _cluster(rows, [(0, 2, 0.999)])
    assert found.cluster[2] == found.cluster[0] != found.cluster[1]
    assert found.matched_by[2] == "probabilistic"


def test_a_namesake_who_could_be_either_side_blocks_the_link():
    """Two registry rows of 尹阳 (born 1990 and 2013, no phones); a grid row and a door card of 尹阳 give
    the household's number. Each of them could be either registry 尹阳, so the shared phone does not make
    them one person."""
    rows = [
        _card(0, scope=REGISTRY, registered=True, birth="1990-03-03"),
        _card(1, scope=REGISTRY, registered=True, birth="2013-08-24"),
        _grid(2, phones=[HOUSEHOLD]),
        _card(3, phones=[HOUSEHOLD]),
    ]
    found = _cluster(rows, [(2, 3, 0.99999998)])
    assert found.cluster[2] != found.cluster[3]
    assert (2, 3, "ambiguous") in {(r.uid_l, r.uid_r, r.reason) for r in found.reviews}
    # a namesake giving a number of its own is ruled out by it
    rows[1] = {**rows[1], "phones": [OTHER]}
    rows[0] = {**rows[0], "phones": [OWN]}
    found = _cluster(rows, [(2, 3, 0.99999998)])
    assert found.cluster[2] == found.cluster[3]


def test_a_kept_link_is_held_back_once_a_namesake_appears():
    """Yesterday the flat held one 尹阳 and the card joined its 台账 row; today a second 台账 row of 尹阳
    (no phone) appears. The kept link is name-only in a flat of namesakes now, and is decided again."""
    rows = [_grid(0, phones=[HOUSEHOLD]), _card(1, phones=[HOUSEHOLD]), _grid(2)]
    kept = Kept(np.array([0]), np.array([1]), np.array([0.99999998]), ["probabilistic"])
    records = table(rows)
    found = build_clusters(records, id_links(records), pairs([(0, 1, 0.99999998), (1, 2, 0.9)]), kept=kept)
    assert len(set(found.cluster)) == 3
    # with the flat's one 尹阳 the kept link stands
    records = table(rows[:2])
    found = build_clusters(records, id_links(records), pairs([(0, 1, 0.9)]), kept=kept)
    assert found.cluster[1] == found.cluster[0]
