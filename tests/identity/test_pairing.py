"""The map paired once in Arrow (`pairing`) gives what the pandas merges on (system, record_key) gave: the
same keys, events and churn (`keys.assign_keys`), the same per-record changes (`churn.record_changes`),
the same count of changed fingerprints and of linked pairs. Each reference below is the pandas computation
the run used before, kept here only to compare with, on random streets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.identity import keys as keys_module
from islandbridge.identity.churn import _change, prints_changed, record_changes
from islandbridge.identity.evaluate import pair_counts, person_pair_counts
from islandbridge.identity.keys import KeyEvent, assign_keys
from islandbridge.identity.links import link_uids
from islandbridge.identity.pairing import KEY, pair
from islandbridge.privacy.keys import Key
from tests.identity.test_keys import _greedy

MAC = Key("person_key", "t1", bytes(range(32)))
SYSTEMS = ("grid_platform", "iot_platform", "resident_registry")

records = st.lists(
    st.tuples(st.sampled_from(SYSTEMS), st.sampled_from([f"k{i}" for i in range(12)])),
    unique=True,
    max_size=25,
)


@st.composite
def days(draw):
    """A previous map over some records, and today's records in clusters, sharing part of the records."""
    before, now = draw(records), draw(records)
    old_keys = st.sampled_from([f"P{i}" for i in range(6)])
    previous = pd.DataFrame(
        [(s, k, draw(old_keys)) for s, k in before], columns=[*KEY, "person_key"], dtype=object
    )
    ids = st.one_of(st.none(), st.sampled_from(["110101199001011234", "P:E123", "220101198001015678"]))
    current = pd.DataFrame(
        [(s, k, draw(st.integers(0, 7)), draw(ids)) for s, k in now],
        columns=[*KEY, "cluster", "id_full"],
        dtype=object,
    )
    retired = draw(st.sets(st.sampled_from(["P4", "P5"])))
    return previous, current, retired


def _old_assign(previous: pd.DataFrame, current: pd.DataFrame, retired) -> keys_module.KeyAssignment:
    joined = current.merge(previous.rename(columns={"person_key": "old_key"}), on=KEY, how="left")
    kept = _greedy(joined)
    issued = set(previous["person_key"]) | set(retired) | set(kept.values())
    fresh = current[~current["cluster"].isin(list(kept))]
    keys = {**kept, **keys_module._fresh_keys(MAC, fresh, issued)}
    joined["new_key"] = joined["cluster"].map(keys)
    churn = int((joined["old_key"].notna() & (joined["old_key"] != joined["new_key"])).sum())
    return keys_module.KeyAssignment(keys, _old_events(previous, joined, set(kept.values())), churn)


def _old_events(previous: pd.DataFrame, joined: pd.DataFrame, kept: set[str]) -> list[KeyEvent]:
    """The records of every old key one of whose records changed key, by merge; the events they make
    are decided as the run decides them (`keys._events_of`)."""
    moved = previous.rename(columns={"person_key": "old_key"}).merge(
        joined[[*KEY, "new_key"]], on=KEY, how="left"
    )
    changed = moved.loc[moved["old_key"] != moved["new_key"], "old_key"].unique()
    return keys_module._events_of(moved[moved["old_key"].isin(changed)], kept)


def _old_changes(previous: pd.DataFrame, current: pd.DataFrame, events) -> pd.DataFrame:
    merged_away = {e.old_key for e in events if e.event == "merge"}
    retired = {e.old_key for e in events if e.event == "retire"}
    both = previous.rename(columns={"person_key": "old"}).merge(
        current.rename(columns={"person_key": "new"}), on=KEY, how="outer"
    )
    changed = both[both["old"].isna() | both["new"].isna() | (both["old"] != both["new"])].copy()
    changed["change"] = [
        _change(o, n, merged_away, retired) for o, n in zip(changed["old"], changed["new"], strict=True)
    ]
    return changed[[*KEY, "change"]].reset_index(drop=True)


@settings(max_examples=300, deadline=None)
@given(days())
def test_keys_events_and_churn_are_those_of_the_pandas_merges(day):
    """Kept and fresh keys, each event and the churn equal the merge-based computation, whatever records
    came, went or moved between clusters."""
    previous, current, retired = day
    new, old = assign_keys(MAC, current, previous, retired), _old_assign(previous, current, retired)
    assert (new.keys, new.events, new.churn) == (old.keys, old.events, old.churn)
    assert new.per_record.to_pylist() == current["cluster"].map(old.keys).tolist()


@settings(max_examples=300, deadline=None)
@given(days())
def test_record_changes_are_those_of_the_outer_merge_in_the_same_order(day):
    previous, current, retired = day
    result = assign_keys(MAC, current, previous, retired)
    now = current[KEY].assign(person_key=current["cluster"].map(result.keys))
    expected = _old_changes(previous, now, result.events).astype(object)
    pd.testing.assert_frame_equal(record_changes(previous, now, result.events).astype(object), expected)


def test_a_record_in_the_map_twice_is_refused_not_counted_twice():
    twice = pa.table({"system": ["a", "a"], "record_key": ["1", "1"]})
    with pytest.raises(ValueError, match="twice"):
        pair(twice, pa.table({"system": ["a"], "record_key": ["1"]}))


def test_the_same_records_in_the_same_order_pair_row_for_row_and_shuffled_by_the_join():
    rows = pa.table({"system": ["a", "a", "b"], "record_key": ["1", "2", "1"]})
    same = pair(rows, rows)
    assert same.before.tolist() == [0, 1, 2] and same.after.tolist() == [0, 1, 2]
    shuffled = pair(rows.take([2, 0, 1]), rows)
    assert shuffled.before.tolist() == [1, 2, 0] and shuffled.after.tolist() == [2, 0, 1]


@settings(max_examples=200, deadline=None)
@given(records, st.data())
def test_changed_fingerprints_count_as_the_dictionaries_did(now, data):
    """A record on several links is judged by its last end's fingerprint (left ends before right ones),
    a missing fingerprint differs from a present one."""
    prints = [data.draw(st.sampled_from(["f1", "f2"])) for _ in now]
    ends = st.tuples(st.sampled_from(SYSTEMS), st.sampled_from([f"k{i}" for i in range(12)]))
    stored = st.one_of(st.none(), st.sampled_from(["f1", "f2"]))
    rows = data.draw(st.lists(st.tuples(ends, stored, ends, stored), max_size=20))
    links = pd.DataFrame(
        [(*left, fl, *right, fr) for left, fl, right, fr in rows],
        columns=["system_l", "record_key_l", "fingerprint_l", "system_r", "record_key_r", "fingerprint_r"],
        dtype=object,
    )
    table = pa.table({"system": [s for s, _ in now], "record_key": [k for _, k in now]}, schema=_KEYS)
    before: dict = {}
    for side in ("l", "r"):
        cols = (links[f"{c}_{side}"].tolist() for c in ("system", "record_key", "fingerprint"))
        before.update({(s, k): f for s, k, f in zip(*cols, strict=True)})
    current = dict(zip(now, prints, strict=True))
    expected = sum(1 for record, fp in before.items() if record in current and current[record] != fp)
    assert prints_changed(links, link_uids(links, table), prints) == expected
    # as `tables.current_links` reads them: strings backed by Arrow, the same ends
    read = links.astype(pd.StringDtype("pyarrow", na_value=np.nan))
    assert np.array_equal(np.stack(link_uids(read, table)), np.stack(link_uids(links, table)), equal_nan=True)


_KEYS = pa.schema([("system", pa.string()), ("record_key", pa.string())])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SYSTEMS), st.sampled_from(["p1", "p2", "p3", "p4"])), max_size=30))
def test_linked_pairs_by_person_are_the_pandas_counts(rows):
    data = pd.DataFrame(rows, columns=["system", "person_key"], dtype=object)
    expected = pair_counts(data, ["person_key"], sorted(data["system"].unique()))
    counts, persons = person_pair_counts(
        pa.array(data["system"].tolist(), pa.string()), pa.array(data["person_key"].tolist(), pa.string())
    )
    assert (counts, persons) == (expected, data["person_key"].nunique())
    assert np.sum(list(counts.values())) == np.sum(list(expected.values()))
