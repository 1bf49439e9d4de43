"""Storage helpers every concern shares: opening a DuckDB database (under a memory limit), run ids, a transaction and an Arrow table
registered for a block (context managers), whether a table exists, and the named parameters a query takes.

Nothing here knows a table of the project's own; each concern creates and owns its tables.

Example::

    with transaction(con), registered(con, "_rows", rows):
        con.execute("DELETE FROM meta.quarantine WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO meta.quarantine SELECT * FROM _rows")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from islandbridge.config import DuckDBResources
from islandbridge.errors import ConfigError

_SPILLS = itertools.count()
log = logging.getLogger(__name__)


def connect(
    path: str = ":memory:",
    read_only: bool = False,
    resources: DuckDBResources | None = None,
    *,
    lock_wait_s: float = 0.0,
) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file at ``path`` (``read_only`` for readers that must not write; an
    in-memory database by default), bounded by ``resources`` (``settings.duckdb``; the machine-derived
    defaults when not given): it spills to disk instead of growing past its memory limit. A writer makes
    the file owner-only (0600): the warehouse holds sealed rows and pseudonyms.

    While another process holds the file (`lock_holder`: a reader's query during a sync, say), the open is
    retried with backoff for up to ``lock_wait_s`` seconds, logged once with the holder's PID; then, or at
    once when 0, DuckDB's conflicting-lock error is raised (the command line's busy error, exit 3)."""
    con = _open_waiting(str(path), read_only, lock_wait_s)
    try:
        bound(con, resources or DuckDBResources.default())
    except BaseException:
        con.close()
        raise
    if not read_only and str(path) != ":memory:":
        owner_only(Path(path), 0o600)
    return con


def _open_waiting(path: str, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline, pause, told = time.monotonic() + wait_s, 0.1, False
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:
            holder = lock_holder(exc)
            if holder is None or time.monotonic() >= deadline:
                raise
            if not told:
                log.warning("%s is held by %s; waiting up to %.0f s for it to let go", path, holder, wait_s)
                told = True
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 1.0)


_HOLDER = re.compile(r"\(PID (\d+)\)")


def lock_holder(exc: BaseException) -> str | None:
    """For DuckDB's "Conflicting lock is held in … (PID n)" (another process has the file open for writing):
    ``"PID n"``, or ``"another process"`` without one; ``None`` for any other error, a file system without
    locks or a folder whose name holds "lock" included."""
    text = str(exc)
    if not isinstance(exc, duckdb.IOException) or "conflicting lock" not in text.lower():
        return None
    found = _HOLDER.search(text)
    return f"PID {found.group(1)}" if found else "another process"


def owner_only(path: Path, mode: int) -> None:
    """Set ``path``'s mode to ``mode`` (0600 or 0700) when this process owns it; otherwise leave it."""
    with contextlib.suppress(OSError):
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)


# What an analyst's query may be: one read-only statement (``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``FROM t``
# and ``VALUES`` are SELECTs too). COPY, EXPORT, ATTACH, INSTALL/LOAD, SET, PRAGMA and CALL are refused.
ANALYST_STATEMENTS = ("SELECT", "EXPLAIN")


def connect_sandboxed(
    path: str, readable_dirs: Iterable[str | Path] = (), resources: DuckDBResources | None = None
) -> duckdb.DuckDBPyConnection:
    """The DuckDB file at ``path``, read-only, with no way out of it: external access off (no file reads or
    writes, no ``ATTACH``, no extension installs), ``readable_dirs`` the only folders its views may read
    (e.g. the device-event Parquet), and the configuration locked so that no ``SET`` can undo it — the
    memory limit and spill folder of ``resources`` (as `connect`) included."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        bound(con, resources or DuckDBResources.default())
        dirs = [str(Path(d).absolute()).rstrip("/") + "/" for d in readable_dirs]
        if dirs:
            con.execute("SET allowed_directories = $dirs", {"dirs": dirs})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def analyst_statement(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """``query`` if it is exactly one SELECT or EXPLAIN; otherwise ``ConfigError`` saying what was refused."""
    statements = con.extract_statements(query)
    if len(statements) != 1:
        raise ConfigError(f"query refused: one statement per query, not {len(statements)}")
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in ANALYST_STATEMENTS:
        raise ConfigError(
            f"query refused: {kind} statements are refused: queries are read-only and reach the warehouse only "
            f"({' or '.join(ANALYST_STATEMENTS)})"
        )
    return query


def bound(con: duckdb.DuckDBPyConnection, resources: DuckDBResources) -> None:
    """Set ``con``'s memory limit and give it a spill folder of its own under ``resources.temp_directory``.

    DuckDB creates that folder when it first spills and removes it when the database closes. A database
    already open in this process (the same file connected twice) keeps the spill folder it has: DuckDB
    cannot switch it once used.
    """
    con.execute(f"SET memory_limit = '{resources.memory_limit}'")
    base = resources.temp_directory
    current = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
    if current and str(current).startswith(str(base / "ib-")):
        return
    base.mkdir(parents=True, exist_ok=True, mode=0o700)  # a spill can hold names (Splink): owner-only
    spill = base / f"ib-{os.getpid()}-{next(_SPILLS)}"
    con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")


def run_id_for(as_of: dt.datetime) -> str:
    """The run id of an interval: derived from its as-of instant, so re-running it replaces it."""
    return "ib_" + as_of.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def has_table(
    con: duckdb.DuckDBPyConnection, table: str, *, database: str | None = None, views: bool = True
) -> bool:
    """Whether ``schema.table`` exists on ``con``: in any database it has attached, or only in
    ``database`` (the quality gate's read-only warehouse, ``wh``). A view counts unless ``views=False``.

    Example: ``has_table(con, "meta.runs", database="wh")``."""
    schema, name = table.split(".", 1)
    where, params = _in_database("table_schema = ? AND table_name = ?", [schema, name], database)
    if not views:
        where += " AND table_type = 'BASE TABLE'"
    return bool(
        con.execute(f"SELECT count(*) FROM information_schema.tables WHERE {where}", params).fetchall()[0][0]
    )


def existing_columns(con: duckdb.DuckDBPyConnection, table: str, *, database: str | None = None) -> set[str]:
    """The columns of ``schema.table`` (empty when there is no such table), in any attached database or
    only in ``database``."""
    schema, name = table.split(".", 1)
    where, params = _in_database("table_schema = ? AND table_name = ?", [schema, name], database)
    return {
        r[0]
        for r in con.execute(
            f"SELECT column_name FROM information_schema.columns WHERE {where}", params
        ).fetchall()
    }


def _in_database(where: str, params: list[str], database: str | None) -> tuple[str, list[str]]:
    """``where`` narrowed to one attached database's rows of an ``information_schema`` view, when given."""
    if database is None:
        return where, params
    return f"{where} AND table_catalog = ?", [*params, database]


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
