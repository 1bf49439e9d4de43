"""The SQL registry's database sessions (``sql_registry.PageReader``): connect arguments, the read-only
session set up on connect, its time limits, and driver errors turned into the project's errors naming the
host and database, never the password."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from islandbridge.errors import FatalSourceError, RetriableError, count

# Driver messages that mean "a person must act" rather than "try again later".
_FATAL_MARKERS = (
    "password",
    "authentication",
    "access denied",
    "permission denied",
    "does not exist",
    "unknown database",
    "no such table",
    "unable to open database",
    "role ",
    "read only",
    "read-only",
    "readonly",
)

# Driver messages of a query cancelled by its time limit (PostgreSQL, MariaDB, MySQL, SQLite interrupt).
_TIMEOUT_MARKERS = (
    "statement timeout",
    "max_statement_time",
    "maximum statement execution time",
    "interrupted",
)

# Run on every new DBAPI connection: read-only sessions, and local time for any zone-aware column.
_SESSION_SETUP = {
    "postgresql": ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET TIME ZONE 'Asia/Shanghai'"),
    "mysql": ("SET SESSION TRANSACTION READ ONLY", "SET time_zone = '+08:00'"),
    "mariadb": ("SET SESSION TRANSACTION READ ONLY", "SET time_zone = '+08:00'"),
    "sqlite": ("PRAGMA query_only = ON",),
}


def classify(exc: Exception, opts: Any) -> FatalSourceError | RetriableError:
    """Turn a driver error into the project's error, naming host/db but never the password."""
    orig = getattr(exc, "orig", None) or exc
    first_line = (str(orig).strip().splitlines() or [""])[0][:200]
    if opts.url.password:
        first_line = first_line.replace(opts.url.password, "***")
    what = f"{opts.safe_url}: {type(orig).__name__}: {first_line}"
    transient = isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout))
    if transient and any(m in first_line.lower() for m in _TIMEOUT_MARKERS):
        return RetriableError(
            f"{what}. A query ran longer than query_timeout_s ({opts.query_timeout_s} s): a slow view or a "
            "lock wait on the registry; run again later, or raise query_timeout_s"
        )
    if not transient or any(m in first_line.lower() for m in _FATAL_MARKERS):
        return FatalSourceError(f"{what}. Check the read-only account, the database name and the schema.")
    return RetriableError(
        f"{what}. The database did not answer after {count(opts.retries + 1, 'attempt')}; run again later."
    )


def check_sqlite_file(opts: Any) -> None:
    """SQLite would silently create a missing file; a missing registry is a configuration problem."""
    database = opts.url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise FatalSourceError(f"{opts.safe_url}: the SQLite registry file does not exist")


def connect_args(opts: Any) -> dict[str, Any]:
    backend = opts.url.get_backend_name()
    if backend == "postgresql":  # the server cancels a longer statement (psycopg's libpq options)
        timeout_ms = opts.query_timeout_s * 1000
        return {"connect_timeout": opts.connect_timeout_s, "options": f"-c statement_timeout={timeout_ms}"}
    if backend in ("mysql", "mariadb"):  # max_statement_time on connect; the socket read as a backstop
        return {"connect_timeout": opts.connect_timeout_s, "read_timeout": opts.query_timeout_s + 10}
    return {}


def _lenient_text(data: bytes) -> str:
    """SQLite text as str; bytes that are not UTF-8 kept as surrogates, so the row is quarantined naming
    its column (``registry_rows.row_problem``) instead of the driver failing the whole query."""
    return data.decode("utf-8", errors="surrogateescape")


def session_setup(dialect: str, query_timeout_s: int):
    statements = _SESSION_SETUP.get(dialect, ())

    def on_connect(dbapi_connection, _record) -> None:
        if dialect == "sqlite":
            dbapi_connection.text_factory = _lenient_text
            interrupt_after(dbapi_connection, _record, query_timeout_s)
        cursor = dbapi_connection.cursor()
        try:
            for sql in statements:
                cursor.execute(sql)
            if dialect in ("mysql", "mariadb"):
                cursor.execute("SELECT VERSION()")
                if "mariadb" in str(cursor.fetchone()[0]).lower():
                    cursor.execute(f"SET SESSION max_statement_time = {int(query_timeout_s)}")
                else:
                    cursor.execute(f"SET SESSION max_execution_time = {int(query_timeout_s) * 1000}")
        finally:
            cursor.close()
        # psycopg opened a transaction for the SETs; a rollback on return to the pool would undo them.
        dbapi_connection.commit()

    return on_connect


def interrupt_after(dbapi_connection, record, seconds: int) -> None:
    """SQLite has no statement timeout: a progress handler interrupts a statement running longer than
    ``seconds``; ``statement_started`` (a ``before_cursor_execute`` listener) resets its clock."""
    started = record.info.setdefault(_STARTED, [time.monotonic()])

    def progress() -> int:
        return 1 if time.monotonic() - started[0] > seconds else 0

    dbapi_connection.set_progress_handler(progress, 100_000)


def statement_started(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
    started = conn.info.get(_STARTED)
    if started is not None:
        started[0] = time.monotonic()


_STARTED = "islandbridge_statement_started"
