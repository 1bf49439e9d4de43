"""Helpers for the identity tests: a later raw slice written the way the loader writes one.

The identity step reads the raw tables, the sealed columns in the vault and ``meta.runs``; a test that
needs "the next sync brought this record" writes exactly that — a run row, raw rows tagged with its run
id and their sealed identifiers — into a copy of a synced warehouse and vault. Every name and number
here is synthetic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import duckdb
import pyarrow as pa
from stdnum.cn import ric

from islandbridge.config import parse_as_of
from islandbridge.landing import raw
from islandbridge.landing.zone import RECORD_KEY
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.scrub import Scrubber
from islandbridge.privacy.sealing import SealedColumns, stream_privacy, warehouse_batch


def make_id(region: str = "511403", born: dt.date = dt.date(1961, 4, 9), sequence: int = 517) -> str:
    """A checksum-valid 18-digit number (synthetic)."""
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def add_run(con: duckdb.DuckDBPyConnection, day: str) -> tuple[str, dt.datetime]:
    """Record a loaded run as of the end of ``day``; returns (run_id, as_of)."""
    as_of = parse_as_of(day)
    run_id = raw.run_id_for(as_of)
    con.execute(
        "INSERT OR REPLACE INTO meta.runs VALUES (?, ?, 'loaded', ?, ?, ?)",
        [run_id, as_of, as_of, as_of, ["test"]],
    )
    return run_id, as_of


def land(
    con: duckdb.DuckDBPyConnection,
    table: str,
    run_id: str,
    record_key: str,
    row: Mapping[str, str | None],
    settings,
) -> None:
    """Append one row (as the source sent it) for ``run_id`` the way the loader does: its direct identifiers
    sealed in the vault of ``settings``, the rest (scrubbed text, ID kinds) in ``raw.<table>``."""
    source, stream = table.split("__", 1)
    spec = stream_privacy(settings.source(source).kind, stream, list(row))
    batch = pa.RecordBatch.from_pylist([{**row, RECORD_KEY: record_key}])
    kept = warehouse_batch(batch, spec, list(row), Scrubber()).to_pylist()[0]
    with open_vault(settings) as vault:
        vault.seal_records(
            source, stream, run_id, [(record_key, {c: row[c] for c in spec.sealed})], replace_slice=False
        )
    columns = [*kept, "_run_id"]
    quoted = ", ".join(f'"{c}"' for c in columns)
    con.execute(
        f"INSERT INTO raw.{table} ({quoted}) VALUES ({', '.join('?' * len(columns))})",
        [*kept.values(), run_id],
    )


def copy_version(
    con: duckdb.DuckDBPyConnection, table: str, record_key: str, from_run: str, to_run: str, settings
) -> None:
    """The source sent ``record_key`` again, unchanged, in ``to_run``: its raw row and its sealed columns."""
    source, stream = table.split("__", 1)
    con.execute(
        f"INSERT INTO raw.{table} SELECT * REPLACE (? AS _run_id) FROM raw.{table} "
        "WHERE _record_key = ? AND _run_id = ?",
        [to_run, record_key, from_run],
    )
    with open_vault(settings) as vault:
        values = vault.open_records(source, stream, [(record_key, from_run)])[0] or {}
        vault.seal_records(source, stream, to_run, [(record_key, values)], replace_slice=False)


def unsealed(
    con: duckdb.DuckDBPyConnection, settings, sql: str, *, source: str, stream: str, columns: list[str]
) -> list[dict]:
    """Rows of ``sql`` (which selects ``record_key`` and ``last_seen_run``) with sealed ``columns`` filled."""
    table = con.sql(sql).to_arrow_table()
    with open_vault(settings) as vault:
        return SealedColumns(vault).fill(table, source=source, stream=stream, columns=columns).to_pylist()


def delete(con: duckdb.DuckDBPyConnection, run_id: str, source: str, stream: str, record_key: str) -> None:
    """Report ``record_key`` deleted at the source in ``run_id`` (as a key scan would)."""
    con.execute("INSERT INTO meta.deletions VALUES (?, ?, ?, ?)", [run_id, source, stream, record_key])


def person_key_of(con: duckdb.DuckDBPyConnection, system: str, record_key: str) -> str | None:
    rows = con.execute(
        "SELECT person_key FROM core.identity_map WHERE system = ? AND record_key = ?", [system, record_key]
    ).fetchall()
    return rows[0][0] if rows else None
