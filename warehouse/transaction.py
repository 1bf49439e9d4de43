"""DuckDB connection helpers: a transaction and an Arrow table registered for a block, as context managers,
and the named parameters a query takes.

Example::

    with transaction(con), registered(con, "_rows", rows):
        con.execute("DELETE FROM meta.quarantine WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO meta.quarantine SELECT * FROM _rows")
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

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


_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def params_for(sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Those of ``values`` that ``sql`` names as ``$name``: DuckDB refuses a parameter a query does not use."""
    return {name: values[name] for name in set(_PARAMETER.findall(sql)) if name in values}
