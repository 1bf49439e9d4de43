"""Read-only snapshots of the warehouse for analysts, published after each successful run.

Analysts never open the warehouse itself (a sync holds its write lock and it still has tables analysts
must not see). After a run, ``publish_snapshot`` builds a new DuckDB file holding only the analyst-safe
part of the warehouse and swaps it in under ``<snapshots dir>/current.duckdb``:

- ``core`` — every table and view except the identity tables, which hold one row per source record
  (``identity_map``, its history ``identity_map_changes``, ``identity_map_before``, ``identity_links``,
  ``identity_review``, ``identity_decisions``); ``identity_events`` and ``person_key_redirects`` (person
  keys only) stay, so an analyst can follow a saved person key to today's;
- ``marts`` — every table and view;
- ``meta`` — run accounting only: ``runs``, ``run_sources``, ``identity_runs``, ``quality_results``,
  ``mart_builds``, plus ``meta.snapshot_info`` describing the snapshot itself;
- never ``raw``, ``meta.quarantine``, ``meta.quality_quarantine``, ``meta.source_state``,
  ``meta.linkage_models`` or any schema not named above.

Tables and columns are discovered from ``information_schema``, so a new core or mart table flows through
without a change here. Columns named like a direct identifier (``name``, ``phone``, ``id_number``,
``bank_card``, ``birth_date``, the source systems' masked identifier columns) or holding a source record
key are dropped even inside an allowed table: belt and braces over the privacy rules of the loader.

Views are recreated in the snapshot from their SQL. A view over the device-event Parquet folder
(``events_dir``) is repointed to a copy of that folder made of hard links (a plain copy where links are
impossible), so the snapshot keeps the events as they were at publish time even when the next sync
rewrites a day partition. A view that needs something the snapshot does not carry (a raw table, an
identity table) is left out and named in ``meta.snapshot_info``. The copy is named by absolute path; a
snapshots folder moved, copied or restored elsewhere has its kept snapshots re-pointed at the copies
beside them by the next publish, and the target of a rollback by the rollback (`repoint_moved`).

Publishing is atomic: the file is written under a temporary name, fsynced, renamed to
``<run_id>.duckdb`` (replacing an earlier publish of the same run), and ``current.duckdb`` — a relative
symlink — is replaced by ``os.replace`` of a temporary symlink (not for a run earlier than the current
snapshot's: an earlier day synced late never moves analysts back; `rollback` does, on purpose). An analyst who opened ``current.duckdb``
keeps reading the file they opened (POSIX keeps an open file alive after it is renamed over or
unlinked). Only the newest ``keep`` snapshots (by publish time, the current one always) stay.

A publish holds an advisory lock on the snapshots folder (`durable.locked`) from start to end, so a second
process publishing at the same time waits for the first. Under that lock, anything still under a temporary
name is the leftover of a publish that was killed before its rename (SIGKILL, power loss: no ``except``
ran): each publish first removes those — the temporary file and its WAL, the event copy of the same
``<run_id>.<token>``, a temporary ``current`` link. Published snapshots and their event copies are never
temporary names, and the lock dies with a killed process.

Example::

    path = publish_snapshot(settings.warehouse_path, settings.snapshots_dir, run_id, keep=7,
                            events_dir=events_dir)
    con = duckdb.connect(str(settings.snapshots_dir / "current.duckdb"), read_only=True)
    rollback(settings.snapshots_dir, "ib_20261119T160000Z")      # current -> an earlier snapshot
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from islandbridge import storage
from islandbridge.config import DuckDBResources
from islandbridge.delivery.durable import fsync_dir, fsync_file, locked
from islandbridge.errors import IslandbridgeError, RetriableError, TerminalError
from islandbridge.privacy.masking import mask_typed
from islandbridge.schemas import VAULT_ROLES, load_tables

log = logging.getLogger(__name__)

CURRENT = "current.duckdb"
SUFFIX = ".duckdb"
EVENTS_FOLDER = "events"  # <snapshots dir>/events/<run_id>.<stamp>/ — the linked event files of a snapshot
ALLOWED_SCHEMAS = ("core", "marts", "meta")
# Run accounting only: counts, statuses, options — no record key, no sealed row, no source state.
META_TABLES = frozenset({"runs", "run_sources", "identity_runs", "quality_results", "mart_builds"})
# One row per source record (or pair of records): these map source record keys to person keys, and with the
# keys dropped still give each record's system, first and last run, or a fingerprint of its identifying
# fields. With the sources in hand they re-identify persons, and no analysis needs them.
IDENTITY_TABLES = frozenset(
    {
        "identity_map",
        "identity_map_before",
        "identity_map_changes",
        "identity_links",
        "identity_review",
        "identity_decisions",
    }
)
# Identifiers come from the vault, never from the warehouse: the vault's field names (but ``address``, which
# the marts build as estate + building + room, a quasi identifier), the masked columns of the source
# schemas (schemas/raw_*.yml), and ``card_number``, a bank-card column name no current table has, kept out should one appear.
IDENTIFIER_COLUMNS = frozenset(
    {role for role in VAULT_ROLES if role != "address"}
    | {c.name for table in load_tables().values() for c in table.columns if c.mask}
    | {"card_number"}
)
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

Clock = Callable[[], dt.datetime]


class SnapshotError(TerminalError):
    """A snapshot cannot be published or selected as asked (unknown run, bad name, missing file).

    Terminal: the request or the files must change. A warehouse that is only busy is a
    ``WarehouseBusyError`` instead."""


class WarehouseBusyError(RetriableError):
    """The warehouse is locked by a sync that is writing it, so it cannot be read for a snapshot now.

    Transient: the lock goes away when that sync ends; publish again later."""


def unopened(exc: duckdb.Error, doing: str, again: str, other: type[TerminalError]) -> IslandbridgeError:
    """The error for a warehouse DuckDB did not open while ``doing`` (``"cannot open the warehouse …"``):
    ``WarehouseBusyError`` (``again`` when the step holding it has finished) only for DuckDB's conflicting
    lock (`storage.lock_holder`); else ``other`` with DuckDB's first line, as running again cannot help."""
    if holder := storage.lock_holder(exc):
        return WarehouseBusyError(
            f"{doing}: a running step holds it ({holder} holds its lock); {again} when it has finished"
        )
    return other(f"{doing}: {str(exc).splitlines()[0]}")


@dataclass(frozen=True)
class Snapshot:
    """One published snapshot file."""

    run_id: str
    path: Path
    published_at: dt.datetime
    size_bytes: int
    is_current: bool


def publish_snapshot(
    warehouse_path: Path,
    snapshots_dir: Path,
    run_id: str,
    keep: int,
    events_dir: Path | None = None,
    *,
    clock: Clock | None = None,
    resources: DuckDBResources | None = None,
) -> Path:
    """Publish the analyst-safe part of the warehouse as ``<snapshots_dir>/<run_id>.duckdb``.

    Repoints ``current.duckdb`` to it, unless it points at a later run's snapshot (an earlier day synced
    after later ones: analysts keep the newest day; this one is opened by name), and prunes to the newest
    ``keep`` snapshots. ``events_dir`` is the
    device-event Parquet folder that views such as ``core.device_events`` read; ``resources``
    (``settings.duckdb``) bound the DuckDB that copies the tables. Opens the warehouse
    read-only (call it when no sync is writing). Raises ``SnapshotError`` for a bad ``run_id`` or ``keep``,
    a missing warehouse, or a run the warehouse does not know. Returns the snapshot's path.
    """
    _check_run_id(run_id)
    if keep < 1:
        raise SnapshotError(f"keep={keep}: keep at least 1 snapshot (the current one)")
    if not Path(warehouse_path).is_file():
        raise SnapshotError(f"no warehouse at {warehouse_path}: run a sync first")
    snapshots_dir = Path(snapshots_dir).absolute()
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    published_at = (clock or _utc_now)()
    token = f"{published_at.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}"
    tmp = snapshots_dir / f".{run_id}.{token}.tmp{SUFFIX}"
    events_copy = snapshots_dir / EVENTS_FOLDER / f"{run_id}.{token}"
    final = snapshots_dir / f"{run_id}{SUFFIX}"
    with locked(snapshots_dir):  # one publish at a time: what a temporary name holds is then a leftover
        _remove_leftovers(snapshots_dir)
        try:
            _build(Path(warehouse_path), tmp, run_id, published_at, (events_dir, events_copy), resources)
            stamp = int(published_at.timestamp() * 1e9)
            os.utime(tmp, ns=(stamp, stamp))  # list_snapshots orders by publish time
            fsync_file(tmp)
            tmp.chmod(0o444)
        except BaseException:
            _discard(tmp, events_copy)
            raise
        os.replace(tmp, final)  # from here on the file is whole and its events are in place
        newer = current_run(snapshots_dir)
        if newer is None or newer <= run_id:
            _point_current(snapshots_dir, final.name)
        else:  # an earlier day synced late: analysts keep the newest day (rollback moves it on purpose)
            log.info("analyst snapshot %s published; current stays at the later run %s", final.name, newer)
        _prune(snapshots_dir, keep)
        repoint_moved(snapshots_dir, [s.path for s in list_snapshots(snapshots_dir)], resources)
    log.debug("published analyst snapshot %s (keeping %d)", final, keep)
    return final


def current_run(snapshots_dir: Path) -> str | None:
    """The run whose snapshot ``current.duckdb`` points at (None: no current snapshot, or its file is gone)."""
    folder = Path(snapshots_dir)
    name = _current_name(folder)
    return name.removesuffix(SUFFIX) if name and (folder / name).is_file() else None


def rollback(snapshots_dir: Path, run_id: str) -> Path:
    """Point ``current.duckdb`` at the kept snapshot of ``run_id``; returns its path.

    Raises ``SnapshotError`` listing the kept snapshots when there is none for ``run_id``.
    """
    _check_run_id(run_id)
    target = Path(snapshots_dir) / f"{run_id}{SUFFIX}"
    if not target.is_file():
        kept = ", ".join(s.run_id for s in list_snapshots(snapshots_dir)) or "(none)"
        raise SnapshotError(
            f"no snapshot of run {mask_typed(run_id)} in {snapshots_dir}; kept snapshots: {kept}"
        )
    with locked(snapshots_dir):  # not while a publish clears leftovers: its temporary link is one of them
        repoint_moved(Path(snapshots_dir), [target])
        _point_current(Path(snapshots_dir), target.name)
    log.info("analyst snapshot rolled back to %s", target)
    return target


def list_snapshots(snapshots_dir: Path) -> list[Snapshot]:
    """The kept snapshots, newest publish first (an absent folder has none)."""
    folder = Path(snapshots_dir)
    if not folder.is_dir():
        return []
    current = _current_name(folder)
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        if path.name == CURRENT or path.name.startswith(".") or path.is_symlink():
            continue
        stat = path.stat()
        found.append(
            Snapshot(
                run_id=path.name.removesuffix(SUFFIX),
                path=path,
                published_at=dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC),
                size_bytes=stat.st_size,
                is_current=path.name == current,
            )
        )
    return sorted(found, key=lambda s: (s.published_at, s.run_id), reverse=True)


def analyst_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[str]]:
    """The tables of ``catalog`` a snapshot carries, as ``schema.table`` -> the columns it keeps."""
    rows = con.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
        "WHERE c.table_catalog = ? AND t.table_type = 'BASE TABLE' ORDER BY 1, 2, c.ordinal_position",
        [catalog],
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for schema, table, column in rows:
        if _table_allowed(schema, table):
            columns = tables.setdefault(f"{schema}.{table}", [])
            if _column_allowed(column):
                columns.append(column)
    return tables


def _table_allowed(schema: str, table: str) -> bool:
    if schema == "core":
        return table not in IDENTITY_TABLES
    if schema == "meta":
        return table in META_TABLES
    return schema in ALLOWED_SCHEMAS


def _column_allowed(column: str) -> bool:
    return column.lower() not in IDENTIFIER_COLUMNS and "record_key" not in column.lower()


def _build(
    warehouse: Path,
    tmp: Path,
    run_id: str,
    published_at: dt.datetime,
    events: tuple[Path | None, Path],
    resources: DuckDBResources | None,
) -> None:
    con = storage.connect(str(tmp), resources=resources)
    try:
        _attach(con, warehouse)
        as_of = _run_as_of(con, warehouse, run_id)
        views = _views(con)
        info = _copy_tables(con)
        con.execute("DETACH src")  # views are created with nothing but the snapshot in reach
        info += _create_views(con, views, _events_copy(views, *events))
        _write_info(con, info, run_id, as_of, published_at, warehouse)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _attach(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    try:
        con.execute(f"ATTACH {_literal(str(warehouse.absolute()))} AS src (READ_ONLY)")
    except duckdb.Error as exc:  # IOException, or a damaged file's plain Error (a bad checksum)
        raise unopened(
            exc, f"cannot open the warehouse {warehouse} read-only", "publish", SnapshotError
        ) from None


def _run_as_of(con: duckdb.DuckDBPyConnection, warehouse: Path, run_id: str) -> dt.datetime:
    has_runs = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'src' "
        "AND table_schema = 'meta' AND table_name = 'runs'"
    ).fetchall()[0][0]
    found = (
        con.execute("SELECT as_of FROM src.meta.runs WHERE run_id = ?", [run_id]).fetchall()
        if has_runs
        else []
    )
    if not found:
        known = (
            con.execute("SELECT string_agg(run_id, ', ' ORDER BY as_of DESC) FROM src.meta.runs").fetchall()[
                0
            ][0]
            if has_runs
            else None
        )
        raise SnapshotError(
            f"run {run_id} is not in meta.runs of {warehouse}; runs there: {known or '(none)'}"
        )
    return found[0][0]


def _copy_tables(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    info = []
    for schema in ALLOWED_SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    all_columns = _all_columns(con)
    for qualified, columns in analyst_tables(con, "src").items():
        schema, table = qualified.split(".", 1)
        dropped = [c for c in all_columns[qualified] if c not in columns]
        if not columns:
            info.append((qualified, "left out", None, "no analyst-safe column"))
            continue
        select = ", ".join(_ident(c) for c in columns)
        rows = con.execute(
            f"CREATE TABLE {_ident(schema)}.{_ident(table)} AS "
            f"SELECT {select} FROM src.{_ident(schema)}.{_ident(table)}"
        ).fetchall()[0][0]
        info.append((qualified, "table", rows, f"dropped columns: {', '.join(dropped)}" if dropped else None))
    return info


def _all_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = 'src' ORDER BY ordinal_position"
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def _views(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        "SELECT schema_name, view_name, sql FROM duckdb_views() "
        "WHERE database_name = 'src' AND NOT internal ORDER BY 1, 2"
    ).fetchall()
    return [(f"{schema}.{view}", sql) for schema, view, sql in rows if _table_allowed(schema, view)]


def _create_views(
    con: duckdb.DuckDBPyConnection, views: list[tuple[str, str]], paths: dict[str, str]
) -> list[tuple]:
    """Create the views in dependency order (retrying while any succeeds); report those that cannot be."""
    pending, created, errors = dict(views), [], {}
    while pending:
        progress = False
        for name, sql in list(pending.items()):
            try:
                con.execute(_repoint(sql, paths))
            except duckdb.Error as exc:
                errors[name] = str(exc).splitlines()[0]
                continue
            created.append((name, "view", None, None))
            del pending[name]
            progress = True
        if not progress:
            break
    for name in pending:
        log.warning("snapshot leaves out view %s: %s", name, errors[name])
    return created + [(name, "left out", None, errors[name]) for name in pending]


def _repoint(sql: str, paths: dict[str, str]) -> str:
    for old, new in paths.items():  # only the whole folder name, not a longer sibling such as events2/
        replacement = new.replace("'", "''")
        sql = re.sub(re.escape(old.replace("'", "''")) + r"(?=[/'])", lambda _, r=replacement: r, sql)
    return sql


def _write_info(
    con, info: list[tuple], run_id: str, as_of, published_at: dt.datetime, warehouse: Path
) -> None:
    con.execute(
        "CREATE TABLE meta.snapshot_info (run_id VARCHAR, as_of TIMESTAMPTZ, published_at TIMESTAMPTZ, "
        "warehouse VARCHAR, object VARCHAR, kind VARCHAR, rows BIGINT, note VARCHAR)"
    )
    con.executemany(
        "INSERT INTO meta.snapshot_info VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(run_id, as_of, published_at, str(warehouse.absolute()), *row) for row in sorted(info)],
    )


def _events_copy(views: list[tuple[str, str]], events_dir: Path | None, target: Path) -> dict[str, str]:
    """Copy the events folder when a view reads it; returns its spellings in view SQL -> the copy."""
    if events_dir is None or not Path(events_dir).is_dir():
        return {}
    spellings = sorted(
        {str(Path(events_dir).absolute()), str(Path(events_dir).resolve())}, key=len, reverse=True
    )
    if not any(old.replace("'", "''") in sql for _, sql in views for old in spellings):
        return {}
    _link_events(Path(events_dir), target)
    return {old: str(target) for old in spellings}


def _link_events(source: Path, target: Path) -> None:
    """Hard-link every event file into ``target`` (same relative layout); copy where linking fails."""
    for path in sorted(source.rglob("*")):
        if path.is_dir() or any(
            part.startswith(".") or part.endswith(".tmp") for part in path.relative_to(source).parts
        ):
            continue  # a writer's temporary file is not an event partition
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
    target.mkdir(parents=True, exist_ok=True)


# A view's path into an event copy: '<snapshots folder>/events/<run_id>.<stamp>/…' (quotes doubled in SQL)
_COPY_PATH = re.compile(r"'((?:[^']|'')*)/" + EVENTS_FOLDER + r"/([A-Za-z0-9][A-Za-z0-9_.-]*)/")


def repoint_moved(folder: Path, snapshots: list[Path], resources: DuckDBResources | None = None) -> None:
    """Point the views of each of ``snapshots`` (files in ``folder``) that read their event copy under
    another folder — ``folder`` was moved, copied or restored elsewhere — at that copy under ``folder``.

    The snapshot is copied, its views re-created in the copy, and the copy renamed over it (publish time,
    mode 0444 kept), so a reader holding it keeps the file it opened. A snapshot that cannot be re-pointed
    is left as it was, with a warning: its tables still read."""
    for path in snapshots:
        try:
            views = _moved_views(Path(folder).absolute(), path, resources)
            if views:
                _rewrite_views(path, views, resources)
                log.info("snapshot %s: its views over the device events now read %s", path.name, folder)
        except (OSError, duckdb.Error) as exc:
            log.warning(
                "snapshot %s: its views over the device events were not re-pointed: %s", path.name, exc
            )


def _moved_views(folder: Path, path: Path, resources: DuckDBResources | None) -> list[str]:
    """``CREATE OR REPLACE VIEW`` statements re-pointing the views of ``path`` that name an event copy of
    ``folder`` under another folder (none when every view reads its copy here)."""
    con = storage.connect(str(path), read_only=True, resources=resources)
    try:
        views = con.execute(
            "SELECT sql FROM duckdb_views() WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
    finally:
        con.close()
    statements = []
    for (sql,) in views:
        paths = {}
        for found in (f for f in _COPY_PATH.finditer(sql) if f.group(1)):
            old = Path(found.group(1).replace("''", "'"), EVENTS_FOLDER, found.group(2))
            here = folder / EVENTS_FOLDER / found.group(2)
            if here.is_dir() and not (old.is_dir() and os.path.samefile(old, here)):
                paths[str(old)] = str(here)
        if paths:
            statements.append(re.sub(r"^CREATE VIEW", "CREATE OR REPLACE VIEW", _repoint(sql, paths)))
    return statements


def _rewrite_views(path: Path, views: list[str], resources: DuckDBResources | None) -> None:
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{SUFFIX}")  # a leftover, should we die
    published = path.stat()
    try:
        shutil.copyfile(path, tmp)
        tmp.chmod(0o600)
        con = storage.connect(str(tmp), resources=resources)
        try:
            for sql in views:
                con.execute(sql)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.utime(tmp, ns=(published.st_atime_ns, published.st_mtime_ns))  # list_snapshots: publish time
        fsync_file(tmp)
        tmp.chmod(0o444)
    except BaseException:
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _point_current(folder: Path, target_name: str) -> None:
    tmp = folder / f".{CURRENT}.{uuid.uuid4().hex}.tmp"
    os.symlink(target_name, tmp)  # relative: the folder may be mounted elsewhere
    os.replace(tmp, folder / CURRENT)
    fsync_dir(folder)


def _current_name(folder: Path) -> str | None:
    link = folder / CURRENT
    return os.readlink(link) if link.is_symlink() else None


def _prune(folder: Path, keep: int) -> None:
    snapshots = list_snapshots(folder)
    kept = [s for s in snapshots if s.is_current] + [s for s in snapshots if not s.is_current]
    for snapshot in kept[keep:]:
        snapshot.path.unlink(missing_ok=True)
    _prune_events(folder, {s.run_id for s in kept[:keep]}, keep)


def _prune_events(folder: Path, kept_runs: set[str], keep: int) -> None:
    """Drop event copies no kept snapshot reads, one publish later than their snapshot file.

    Kept: the newest copy of each kept run, and the newest ``keep + 1`` copies of any run — an analyst
    may still hold the snapshot file that the last publish pruned or replaced (POSIX keeps the file alive,
    but its view reads the copy by path).
    """
    root = folder / EVENTS_FOLDER
    copies = sorted(
        root.iterdir() if root.is_dir() else (), key=lambda p: p.name.rsplit(".", 1)[-1], reverse=True
    )
    protected = set(copies[: keep + 1])
    for run_id in kept_runs:
        protected.update([p for p in copies if p.name.rsplit(".", 1)[0] == run_id][:1])
    for path in copies:
        if path not in protected:
            shutil.rmtree(path, ignore_errors=True)


def _remove_leftovers(folder: Path) -> None:
    """Remove what a publish killed before its rename left: its temporary file (and WAL), its event copy, a
    temporary ``current`` link. Called under the folder's lock, so no publish of another process is under way.
    """
    for path in folder.iterdir():
        name = path.name
        if name.startswith(".") and name.endswith((f".tmp{SUFFIX}", f".tmp{SUFFIX}.wal")):
            copy = name[1:].split(f".tmp{SUFFIX}", 1)[0]  # <run_id>.<token>, the name of its event copy
            log.warning("removing %s, left by a publish that did not finish", name)
            _discard(path, folder / EVENTS_FOLDER / copy)
        elif name.startswith(f".{CURRENT}.") and name.endswith(".tmp"):
            path.unlink(missing_ok=True)


def _discard(tmp: Path, events_copy: Path) -> None:
    """Remove an unfinished publish: the event copy first, the temporary file (which names it) last."""
    shutil.rmtree(events_copy, ignore_errors=True)
    Path(f"{tmp}.wal").unlink(missing_ok=True)
    tmp.unlink(missing_ok=True)


def _check_run_id(run_id: str) -> None:
    if not _RUN_ID.match(run_id or "") or run_id == CURRENT.removesuffix(SUFFIX):
        raise SnapshotError(
            f"run id {mask_typed(run_id)!r} cannot name a snapshot file: use letters, digits, '_', '.', '-' "
            "(for example ib_20261120T160000Z)"
        )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
