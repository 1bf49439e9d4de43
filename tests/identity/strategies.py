"""Synthetic record tables and scored pairs for the clustering properties (no real person's data)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from islandbridge.identity.records import FEATURES
from tests.identity.support import make_id

NAMES = [("张伟", "zhangwei"), ("章伟", "zhangwei"), ("李娜", "lina"), ("王芳", "wangfang")]
IDS = [make_id(sequence=s) for s in (11, 12, 13)]
PHONES = ["+8613800138000", "+8613900139000"]
HOUSES = ["XQ001|1|1|101", "XQ001|1|1|102"]
SCOPES = [None, None, "grid_platform/residents", "resident_registry/t_jm:current"]


def record(uid: int = 0, **fields: Any) -> dict[str, Any]:
    """One record of `records.FEATURES` with everything unknown except ``fields``."""
    row: dict[str, Any] = {name: None for name in FEATURES.names}
    row.update(uid=uid, system="test", record_key=f"r:{uid}", phones=[], is_home=True)
    if "name_key" in fields and "pinyin_key" not in fields:
        fields["pinyin_key"] = dict(NAMES).get(fields["name_key"])
    row.update(fields)
    if "registered" not in fields:  # a registry row (these tests mark only living ones by their scope)
        row["registered"] = bool(row.get("scope") and row["scope"].startswith("resident_registry/"))
    if row.get("house_key") and not row.get("room_key"):
        row["room_key"] = row["house_key"].split("|", 1)[1]
    if row.get("id_full") and not row.get("id_ps"):
        row["id_ps"] = row["id_full"][:6] + row["id_full"][-4:]
    if row.get("id_full") and not row.get("birth"):
        number = row["id_full"]
        row["birth"] = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    if row.get("birth") and not row.get("birth_ym"):
        row["birth_ym"] = row["birth"][:7]
    return row


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=FEATURES)


def pairs(links: list[tuple[int, int, float]]) -> pa.Table:
    """Scored pairs (uid_l, uid_r, probability); the weight is the log-odds of the probability."""
    import math

    return pa.table(
        {
            "uid_l": pa.array([min(a, b) for a, b, _ in links], pa.int64()),
            "uid_r": pa.array([max(a, b) for a, b, _ in links], pa.int64()),
            "match_weight": pa.array(
                [math.log2(p / (1 - p)) if p < 1 else 60.0 for _, _, p in links], pa.float64()
            ),
            "match_probability": pa.array([p for _, _, p in links], pa.float64()),
        }
    )


@st.composite
def record_rows(draw, max_size: int = 12) -> list[dict[str, Any]]:
    n = draw(st.integers(2, max_size))
    rows = []
    for uid in range(n):
        name, pinyin = draw(st.sampled_from(NAMES))
        rows.append(
            record(
                uid,
                name_key=name,
                pinyin_key=pinyin,
                id_full=draw(st.one_of(st.none(), st.sampled_from(IDS))),
                phones=draw(st.lists(st.sampled_from(PHONES), max_size=2, unique=True)),
                house_key=draw(st.one_of(st.none(), st.sampled_from(HOUSES))),
                sex=draw(st.sampled_from([None, "M", "F"])),
                scope=draw(st.sampled_from(SCOPES)),
            )
        )
    return rows


@st.composite
def scored_links(draw, n: int) -> list[tuple[int, int, float]]:
    candidates = [(a, b) for a in range(n) for b in range(a + 1, n)]
    chosen = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=len(candidates)))
    return [(a, b, draw(st.floats(0.5, 0.999999))) for a, b in chosen]
