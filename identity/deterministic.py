"""Deterministic linkage: records with the same valid full ID number are the same person.

A valid full number is an 18-digit 身份证 number whose check digit and birth date hold (a legacy
15-digit number upgraded to 18 counts), or a foreign resident's passport number (``P:<number>``).
Excel-damaged numbers, numbers whose check digit fails and masked numbers never link on their own.

Example::

    edges = id_links(records)   # [(3, 17), (3, 90), ...]: each record to its group's smallest uid
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def id_links(records: pa.Table) -> list[tuple[int, int]]:
    """Edges joining every record to the smallest ``uid`` of the records that share its ``id_full``.

    >>> id_links(pa.table({"uid": [0, 1, 2], "id_full": ["A", None, "A"]}))
    [(0, 2)]
    """
    keyed = records.select(["uid", "id_full"]).filter(pc.is_valid(records["id_full"]))
    groups = keyed.group_by("id_full").aggregate([("uid", "list")])
    edges = []
    for uids in groups["uid_list"].to_pylist():
        first, *rest = sorted(uids)
        edges += [(first, uid) for uid in rest]
    return sorted(edges)
