"""Helpers for the identity tests: a later raw slice written the way the loader writes one.

The identity step reads the raw tables and ``meta.runs``; a test that needs "the next sync brought
this record" writes exactly that — a run row and raw rows tagged with its run id — into a copy of a
synced warehouse. Every name and number here is synthetic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import duckdb
from stdnum.cn import ric

from islandbridge.config import parse_as_of
from islandbridge.warehouse import raw


def make_id(region: str = "511403", born: dt.date = dt.date(1961, 4, 9), sequence: int = 517) -> str:
    """A checksum-valid 18-digit number (synthetic)."""
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def add_run(con: duckdb.DuckDBPyConnection, day: str) -> tuple[str, dt.datetime]:
    """Record a loaded run as of the end of ``day``; returns (run_id, as_of)."""
    as_of = parse_as_of(day)
    run_id = raw.run_id_for(as_of)
    con.execute("INSERT OR REPLACE INTO meta.runs VALUES (?, ?, 'loaded', ?, ?, ?)",
                [run_id, as_of, as_of, as_of, ["test"]])
    return run_id, as_of


def land(con: duckdb.DuckDBPyConnection, table: str, run_id: str, record_key: str, row: Mapping[str, str | None]) -> None:
    """Append one raw row (text columns as the source sent them) to ``raw.<table>`` for ``run_id``."""
    columns = [*row, "_record_key", "_run_id"]
    quoted = ", ".join(f'"{c}"' for c in columns)
    con.execute(f"INSERT INTO raw.{table} ({quoted}) VALUES ({', '.join('?' * len(columns))})",
                [*row.values(), record_key, run_id])


def delete(con: duckdb.DuckDBPyConnection, run_id: str, source: str, stream: str, record_key: str) -> None:
    """Report ``record_key`` deleted at the source in ``run_id`` (as a key scan would)."""
    con.execute("INSERT INTO meta.deletions VALUES (?, ?, ?, ?)", [run_id, source, stream, record_key])


def person_key_of(con: duckdb.DuckDBPyConnection, system: str, record_key: str) -> str | None:
    rows = con.execute("SELECT person_key FROM core.identity_map WHERE system = ? AND record_key = ?",
                       [system, record_key]).fetchall()
    return rows[0][0] if rows else None
