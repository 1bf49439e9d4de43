"""Two registry rows of one flat whose stays overlap are two people (``registered_together``).

The registry keeps one row per stay (SPEC A: a person who moved out and back in has two rows, the old one
moved out with its exit date): a row's stay runs from its move-in date (role ``moved_in``) to its exit
date (``moved_out``, set when the row is moved out or deceased) or, for a living row, on. One person's
stays at a flat follow one another, so two rows of one flat whose stays overlap are two people, however
alike the rest of them looks: a father and his son both 苏*, the son's row moved out and without a valid
number, the father's living and without a birth date, both giving the son's phone. The rule that a
moved-out row and a living row may be one person (`records.PersonStream.distinct`) cannot tell them apart;
their dates can.

`together` gives such rows as cannot-link pairs for the clustering (`decided.with_apart`), only those of
one name (pinyin) in one flat: a flat's co-residents are all registered together, and rows of different
names are not the ones a link would join. A row without a move-in date, or moved out without an exit date,
has no known stay and is in no pair.

Only an equal valid full ID number joins such a pair anyway (`clusters.build_clusters`): the number is
stronger evidence than two stays, so the rows are one person registered twice at once, an inconsistency
of the registry that `joined_by_id` puts in the review queue (``registered_together_same_id``).

Example::

    together(con, person_streams(settings), as_of, records)   # [(uid, uid), ...]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.records import BoundStream, StreamPlan, latest_rows
from islandbridge.identity.values import parse_birth
from islandbridge.schemas import table_of
from islandbridge.storage import has_table

SAME_ID = "registered_together_same_id"  # the review of rows registered together that one ID number joins


def together(con, plan: StreamPlan, as_of: dt.datetime, records: pa.Table) -> list[tuple[int, int]]:
    """Pairs of uids of register rows of one flat and name (pinyin) whose stays overlap, sorted."""
    pairs: set[tuple[int, int]] = set()
    for stream in plan.streams:
        if stream.spec.is_register and has_table(con, stream.table):
            pairs |= _stream_pairs(con, stream, as_of, records)
    return sorted(pairs)


def joined_by_id(
    together: Iterable[tuple[int, int]], id_components: np.ndarray
) -> list[tuple[int, int, None, str]]:
    """Reviews (uid, uid, no probability, reason) of the `together` pairs that one ID number joins (equal
    ``id_components``, `clusters.connected_components` of the ID links): one person, overlapping stays."""
    same = sorted({(min(a, b), max(a, b)) for a, b in together if id_components[a] == id_components[b]})
    return [(a, b, None, SAME_ID) for a, b in same]


def overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Whether two stays (move-in day, exit day or ``"9999"`` for a row still living) overlap: a stay
    whose exit day is the other's move-in day does not (out and back the same day)."""
    return a[0] < b[1] and b[0] < a[1]


def _stream_pairs(con, stream: BoundStream, as_of: dt.datetime, records: pa.Table) -> set[tuple[int, int]]:
    roles = table_of(stream.spec.system, stream.spec.stream).roles()
    columns = [roles.get(role) for role in ("moved_in", "moved_out", "status")]
    if None in columns:
        return set()
    moved_in, moved_out, status = columns
    mine = _sharing_a_flat_and_name(records.filter(pc.equal(records["system"], stream.spec.system)))
    if not mine.num_rows:
        return set()
    rows = latest_rows(con, stream, as_of, columns)
    rows = rows.filter(pc.is_in(rows["record_key"], mine["record_key"]))
    stays = {
        key: stay
        for key, start, end, state in zip(
            *(rows[c].to_pylist() for c in ("record_key", moved_in, moved_out, status)), strict=True
        )
        if (stay := _stay(start, end, stream.spec.is_current(_text(state)))) is not None
    }
    groups: dict[tuple[str, str], list[tuple[int, tuple[str, str]]]] = {}
    for uid, key, house, name in zip(
        *(mine[c].to_pylist() for c in ("uid", "record_key", "house_key", "pinyin_key")), strict=True
    ):
        if house and name and key in stays:
            groups.setdefault((house, name), []).append((uid, stays[key]))
    return {
        (min(a, b), max(a, b))
        for rows_of in groups.values()
        if len(rows_of) > 1
        for (a, stay_a), (b, stay_b) in combinations(rows_of, 2)
        if overlap(stay_a, stay_b)
    }


def _sharing_a_flat_and_name(rows: pa.Table) -> pa.Table:
    """The rows whose flat and name (pinyin) another row has too: the only ones a pair can hold."""
    rows = rows.select(["uid", "record_key", "house_key", "pinyin_key"]).drop_null()
    groups = rows.group_by(["house_key", "pinyin_key"]).aggregate([("uid", "count")])
    shared = groups.filter(pc.greater(groups["uid_count"], 1)).select(["house_key", "pinyin_key"])
    return rows.join(shared, ["house_key", "pinyin_key"], join_type="inner")


def _stay(start: object, end: object, living: bool) -> tuple[str, str] | None:
    """A row's stay as (move-in day, exit day or ``"9999"``), or None when its dates do not say. The
    registry writes these dates as it writes birth dates (``2022-07-16``, ``20220716``)."""
    first, _ = parse_birth(_text(start))
    last, _ = parse_birth(_text(end))
    if first is None or (not living and last is None):
        return None
    return first, "9999" if living else last


def _text(value: object) -> str | None:
    """A raw value as text: a date as ``YYYY-MM-DD``, a status code as its digits, null as None."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat() if isinstance(value, dt.date) else str(value)
