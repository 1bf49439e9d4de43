"""Stable person keys across runs: kept by overlap, new ones from an anchor, events with both keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity.keys import _keep_by_overlap, assign_keys, assign_paired
from islandbridge.identity.pairing import map_table, pair
from islandbridge.privacy.keys import Key
from islandbridge.privacy.pseudonymise import person_key
from tests.identity.support import make_id

MAC = Key("person_key", "t1", bytes(range(32)))
NUMBER = make_id()
REG, GRID, IOT, CIV = (
    ("resident_registry", "t_jm:1"),
    ("grid_platform", "residents:GP1"),
    ("iot_platform", "cardholders:H1"),
    ("civil_affairs", "senior:202611:1"),
)


def _current(clusters: dict[int, list], ids: dict | None = None) -> pd.DataFrame:
    rows = [(s, k, c, (ids or {}).get((s, k))) for c, recs in clusters.items() for s, k in recs]
    return pd.DataFrame(rows, columns=["system", "record_key", "cluster", "id_full"], dtype=object)


def _previous(mapping: dict | None = None) -> pd.DataFrame:
    rows = [(s, k, key) for (s, k), key in (mapping or {}).items()]
    return pd.DataFrame(rows, columns=["system", "record_key", "person_key"], dtype=object)


def _assign(clusters, previous=None, retired=(), ids=None):
    return assign_keys(MAC, _current(clusters, ids), _previous(previous), retired)


def _events(result) -> list[tuple]:
    return [(e.event, e.old_key, e.new_key) for e in result.events]


def test_a_new_person_is_keyed_by_the_hmac_of_its_smallest_id_number():
    """The first key of a person with a valid number is person_key(mac, number): no personal data in it."""
    result = _assign({0: [REG, GRID]}, ids={REG: NUMBER})
    assert result.keys[0] == person_key(MAC, NUMBER)
    assert NUMBER not in result.keys[0]


def test_a_person_without_a_number_is_keyed_by_its_smallest_record():
    result = _assign({0: [IOT, GRID]})
    assert result.keys[0] == person_key(MAC, f"record:{GRID[0]}:{GRID[1]}")


def test_a_missing_number_read_by_pandas_as_nan_is_no_number():
    """A frame from ``to_pandas()`` holds NaN, not None, where a record has no number."""
    current = _current({0: [IOT], 1: [REG]}, ids={REG: NUMBER})
    current["id_full"] = pd.Series([np.nan, NUMBER], dtype=object)
    result = assign_keys(MAC, current, _previous(), ())
    assert result.keys == {0: person_key(MAC, f"record:{IOT[0]}:{IOT[1]}"), 1: person_key(MAC, NUMBER)}


def test_unchanged_clusters_keep_their_keys_with_no_events():
    clusters = {0: [REG, GRID], 1: [IOT]}
    first = _assign(clusters, ids={REG: NUMBER})
    previous = {rec: first.keys[c] for c, recs in clusters.items() for rec in recs}
    again = _assign(clusters, previous=previous, ids={REG: NUMBER})
    assert again.keys == first.keys and again.events == [] and again.churn == 0


def test_a_key_survives_its_anchor_changing():
    """An IoT-only person keyed by its record keeps that key when a record with an ID number joins."""
    first = _assign({0: [IOT]})
    later = _assign({5: [IOT, REG]}, previous={IOT: first.keys[0]}, ids={REG: NUMBER})
    assert later.keys[5] == first.keys[0] and later.churn == 0


def test_a_merge_keeps_the_larger_persons_key_and_records_both():
    result = _assign({0: [REG, GRID, IOT]}, previous={REG: "pk_a", GRID: "pk_a", IOT: "pk_b"})
    assert result.keys[0] == "pk_a"
    assert _events(result) == [("merge", "pk_b", "pk_a")]
    assert result.redirects == [("pk_b", "pk_a")] and result.churn == 1


def test_a_split_keeps_the_key_on_the_larger_part_and_gives_the_other_a_new_one():
    result = _assign({0: [REG, GRID], 1: [IOT]}, previous={REG: "pk_a", GRID: "pk_a", IOT: "pk_a"})
    assert result.keys[0] == "pk_a" and result.keys[1] != "pk_a"
    assert _events(result) == [("split", "pk_a", result.keys[1])]


def test_a_key_whose_records_all_vanished_is_retired():
    result = _assign({0: [REG]}, previous={REG: "pk_a", CIV: "pk_gone"})
    assert _events(result) == [("retire", "pk_gone", None)]


def test_a_retired_key_is_never_issued_again():
    """The anchor's key was issued before and retired: the new person takes its next anchor's key."""
    retired = person_key(MAC, f"record:{GRID[0]}:{GRID[1]}")
    result = _assign({0: [GRID, IOT]}, retired=[retired])
    assert result.keys[0] != retired
    assert result.keys[0] == person_key(MAC, f"record:{IOT[0]}:{IOT[1]}")


def _greedy(joined: pd.DataFrame) -> dict[int, str]:
    """The overlap rule read literally: every (cluster, old key) pair, largest overlap first."""
    overlap = joined.dropna(subset=["old_key"]).groupby(["cluster", "old_key"]).size().reset_index(name="n")
    overlap = overlap.sort_values(["n", "old_key", "cluster"], ascending=[False, True, True])
    kept: dict[int, str] = {}
    for cluster, old in zip(overlap["cluster"], overlap["old_key"], strict=True):
        if cluster not in kept and old not in kept.values():
            kept[cluster] = old
    return kept


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.one_of(st.none(), st.sampled_from("abcdef"))), max_size=30))
def test_uncontested_clusters_keep_their_key_as_the_greedy_overlap_rule_gives(rows):
    """Clusters that alone carry one old key skip the greedy loop; the keys kept are the same."""
    joined = pd.DataFrame(rows, columns=["cluster", "old_key"]).astype({"old_key": object})
    clusters = np.asarray([c for c, _ in rows], dtype=np.int64)
    old = pa.array([o for _, o in rows], pa.string())
    assert _keep_by_overlap(clusters, old) == _greedy(joined)


def _assign_remembering(clusters, remembered: dict, previous=None, ids=None):
    """`assign_paired` with each record's key before a rewind forgot it (``remembered``)."""
    current = _current(clusters, ids)
    records = pa.table(
        {c: pa.array(current[c], pa.string(), from_pandas=True) for c in ("system", "record_key", "id_full")}
    )
    before = map_table(_previous(previous))
    hints = pa.array(
        [remembered.get(rec) for rec in zip(current.system, current.record_key, strict=True)], pa.string()
    )
    clusters = np.asarray(current["cluster"].tolist(), dtype=np.int64)
    return assign_paired(MAC, records, clusters, before, pair(before, records), (), hints)


def test_a_new_person_takes_the_key_a_rewind_forgot_not_its_anchors():
    """A card holder seen alone on an earlier day synced late gets the key its records had before (keyed
    then by the registry's number), so the later days keep that key; no event, no churn."""
    result = _assign_remembering({0: [IOT]}, remembered={IOT: "pk_before", REG: "pk_before"})
    assert result.keys[0] == "pk_before" and result.events == [] and result.churn == 0


def test_a_remembered_key_issued_to_another_person_is_not_taken_again():
    result = _assign_remembering({0: [REG], 1: [IOT]}, remembered={IOT: "pk_a"}, previous={REG: "pk_a"})
    assert result.keys == {0: "pk_a", 1: person_key(MAC, f"record:{IOT[0]}:{IOT[1]}")}
