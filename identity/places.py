"""The registry's places, as matching reads them: estate codes by name, communities by estate, houses by grid.

The registry's place tables (stream, columns): estate names resolve free-text addresses to estate codes,
estates give every addressed record its community, and houses place an address without its estate
(`records._grid_placed`). Read at the run's as-of from the newest version of each row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from islandbridge.storage import existing_columns, has_table
from islandbridge.transforms.normalize import drop_blanks, fold, house_key

ESTATES = ("t_xq", ("xqbm", "xqmc", "sqmc"))
HOUSES = ("t_fw", ("xqbm", "ld", "dy", "fh", "wgbm"))


class Places(NamedTuple):
    """What the registry says about places: estate code by name (to read free-text addresses), community
    by estate code, and the house of each (grid code, building|unit|room) that only one house has."""

    codes: Mapping[str, str]
    communities: Mapping[str, str]
    grid_houses: Mapping[tuple[str, str], str]


def load_places(con, registers: Sequence[str], as_of: dt.datetime) -> Places:
    codes: dict[str, str] = {}
    communities: dict[str, str] = {}
    grid_houses: dict[tuple[str, str], str | None] = {}
    for source in registers:
        for row in _newest(con, source, ESTATES, as_of):
            code = drop_blanks(fold(row["xqbm"])).upper() if isinstance(row["xqbm"], str) else None
            if code and row["xqmc"]:
                codes[row["xqmc"]] = row["xqbm"]
            if code and isinstance(row.get("sqmc"), str) and drop_blanks(fold(row["sqmc"])):
                communities[code] = drop_blanks(fold(row["sqmc"]))
        for row in _newest(con, source, HOUSES, as_of):
            key = house_key(row["xqbm"], row["ld"], row["dy"], row["fh"])
            grid = drop_blanks(fold(row["wgbm"])) if isinstance(row.get("wgbm"), str) else None
            if key and grid:
                slot = (grid, key.split("|", 1)[1])
                grid_houses[slot] = key if grid_houses.get(slot, key) == key else None  # two houses: unknown
    return Places(codes, communities, {slot: key for slot, key in grid_houses.items() if key})


def _newest(con, source: str, stream: tuple[str, tuple[str, ...]], as_of: dt.datetime) -> list[dict]:
    """The newest rows of one of the registry's place tables, with those of ``columns`` it holds."""
    from islandbridge.identity.records import latest_sql  # records reads places: imported when called

    name, columns = stream
    table = f"raw.{source}__{name}"
    if not has_table(con, table):
        return []
    existing = existing_columns(con, table)
    rows = (
        con.sql(
            latest_sql(table, [c for c in columns if c in existing]),
            params={"as_of": as_of, "source": source, "stream": name},
        )
        .to_arrow_table()
        .to_pylist()
    )
    return [{c: row.get(c) for c in columns} for row in rows]
