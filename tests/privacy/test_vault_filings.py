"""Columnar sealing gives the bytes a single row gets, and the vault names exactly the records to file again."""

from __future__ import annotations

import json

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from islandbridge.privacy.vault_columns import associated_data

KEYS = st.lists(st.tuples(*[st.text(max_size=12)] * 4), min_size=1, max_size=20)


@settings(deadline=None)  # a timing limit is no part of what this checks
@given(KEYS)
def test_columnar_associated_data_is_the_json_of_each_row(rows):
    """Quotes, backslashes, control characters and CJK text: the same bytes as ``json.dumps`` per row."""
    columns = [pa.array([r[i] for r in rows], pa.string()) for i in range(4)]
    expected = [json.dumps(["label", "1", *r], ensure_ascii=False).encode("utf-8") for r in rows]
    assert associated_data("label", "1", columns) == expected


def _mapped(*rows) -> pa.Table:
    names = ("record_key", "last_seen_run", "person_key")
    table = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})
    return table.append_column("raw_digest", pa.nulls(len(rows), pa.binary()))


def test_only_changed_moved_or_unfiled_records_are_stale(vault):
    sealed = {"r:1": {"xm": "张三"}, "r:2": {"xm": "李四"}, "r:3": {"xm": "王五"}}
    vault.seal_records("registry", "t_jm", "run1", sealed.items())
    day1 = _mapped(("r:1", "run1", "pk_a"), ("r:2", "run1", "pk_b"), ("r:3", "run1", "pk_c"))
    assert vault.stale_records("registry", "t_jm", "resident_registry", day1).num_rows == 3
    vault.put_many([(f"pk_{p}", "name", "resident_registry", f"r:{i}", "x") for i, p in ((1, "a"), (2, "b"))])
    vault.note_filed("registry", "t_jm", "resident_registry", day1)
    # run2: r:1 sent again unchanged, r:2 with a new name; r:1 moved to another person; r:3 has nothing filed
    vault.seal_records("registry", "t_jm", "run2", [("r:1", sealed["r:1"]), ("r:2", {"xm": "李四四"})])
    day2 = _mapped(("r:1", "run2", "pk_a"), ("r:2", "run2", "pk_b"), ("r:3", "run1", "pk_c"))
    stale = vault.stale_records("registry", "t_jm", "resident_registry", day2)
    assert stale["record_key"].to_pylist() == ["r:2", "r:3"]
    moved = _mapped(("r:1", "run2", "pk_z"))
    assert vault.stale_records("registry", "t_jm", "resident_registry", moved)["record_key"].to_pylist() == [
        "r:1"
    ]
