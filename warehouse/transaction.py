"""DuckDB connection scopes as context managers: a transaction, and an Arrow table registered for a block.

Example::

    with transaction(con), registered(con, "_rows", rows):
        con.execute("DELETE FROM meta.quarantine WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO meta.quarantine SELECT * FROM _rows")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb
import pyarrow as pa


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN on ``con``; COMMIT after the block, or ROLLBACK and re-raise on any exception (an interrupt too)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to SQL on ``con`` as ``name`` for the block, unregistered after it."""
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)
