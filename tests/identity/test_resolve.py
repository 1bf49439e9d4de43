"""The clustering's shortcuts must not change what it finds.

`clusters._resolve_all` links a *plain* component (no two records that could `conflict`, nothing held
back) whole, without its union-find. Existing properties (no two ID numbers in a person, ...) would
still hold if that shortcut linked a little too much or too little; this compares it, on random
streets, with resolving every component one by one."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity import clusters
from islandbridge.identity.decided import Decisions
from islandbridge.identity.deterministic import id_links
from islandbridge.identity.links import Kept
from tests.identity.strategies import HOUSES, IDS, NAMES, SCOPES, pairs, record, table

BOUNDS = [None, None, "1961-04", "1985-01-01", "2008-11-20"]


def _every_component(records, components: np.ndarray, busy: np.ndarray) -> np.ndarray:
    return np.unique(components[busy])


@st.composite
def sparse_street(draw) -> tuple[list[dict], list[tuple[int, int, float]]]:
    """Records with few known values, linked to their near neighbours only: many small components,
    some plain and some holding a single contradiction (which a wrong shortcut would link over)."""
    n = draw(st.integers(2, 14))
    rows = [
        record(
            uid,
            name_key=draw(st.sampled_from(NAMES))[0],
            id_full=draw(st.sampled_from([None, None, None, *IDS[:2]])),
            sex=draw(st.sampled_from([None, None, "M", "F"])),
            scope=draw(st.sampled_from(SCOPES)),
            house_key=draw(st.sampled_from([None, *HOUSES])),
            born_by=draw(st.sampled_from(BOUNDS)),
        )
        for uid in range(n)
    ]
    near = [(a, b) for a in range(n) for b in range(a + 1, min(n, a + 3))]
    chosen = [pair for pair in near if draw(st.booleans())]
    return rows, [(a, b, draw(st.sampled_from([0.95, 0.995, 0.9999, 0.999999]))) for a, b in chosen]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_plain_components_link_as_the_union_find_would(data) -> None:
    rows, links = data.draw(sparse_street())
    n = len(rows)
    records = table(rows)
    again = data.draw(st.lists(st.sampled_from(links), unique=True)) if links else []
    kept = Kept(
        np.array([a for a, _, _ in again], np.int64),
        np.array([b for _, b, _ in again], np.int64),
        np.array([p for _, _, p in again], np.float64),
        ["probabilistic"] * len(again),
    )
    apart = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2))
    decisions = Decisions(different=tuple((a, b) for a, b in apart if a != b))

    def cluster():
        return clusters.build_clusters(
            records, id_links(records), pairs(links), kept=kept, decisions=decisions
        )

    found = cluster()
    with patch.object(clusters, "_tangled", _every_component):
        resolved = cluster()
    assert found == resolved


def test_a_roster_twice_is_resolved_not_linked_whole() -> None:
    """Two rows of one roster in a component that is otherwise plain: the model's link is refused."""
    rows = [record(uid, name_key="张伟", scope="grid_platform/residents") for uid in range(2)]
    records = table(rows)
    found = clusters.build_clusters(records, id_links(records), pairs([(0, 1, 0.9999)]))
    assert found.cluster == [0, 1]
    assert [r.reason for r in found.reviews] == ["same_roster"]
