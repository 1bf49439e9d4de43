"""Event logs in ``raw`` kept as the landed Parquet parts themselves, not copied into DuckDB.

An append-only event log (a stream whose schema says ``volume: flow`` and whose columns need no
pseudonymising, such as the IoT platform's ``events``) is big and is read back whole only once, by the
build of ``core.device_events``. Its raw slice is therefore not inserted into a DuckDB table: the load
hard-links the run's landed parts (a copy where linking is impossible) into the warehouse's own folder,

    {root}/{source}__{stream}/_run_id={run_id}/{digest}/part-NNNNN.parquet

and ``raw.{source}__{stream}`` becomes a view over the parts listed in ``meta.raw_parts``. The view has the
columns a raw table would have (text columns, ``_record_key``, ``_run_id``), so readers do not change.

``meta.raw_parts.file`` is relative to ``root`` (the ``raw`` folder beside the warehouse file), so a copied,
moved or restored warehouse folder reads and deletes its own parts, never the original's: every reader
resolves it against the root of the warehouse it has open (`warehouse_root`), and nothing outside that
root is ever deleted. Only the view holds absolute paths (DuckDB resolves a relative one against the
process's working folder); `rebase`, run by every write connection, re-creates a view that still reads
another folder. Warehouses written before kept absolute paths: `rebase` makes those relative (a path under
another root is taken as the same ``{source}__{stream}/…`` tail under this one).

A listed part that is not there (deleted, or the warehouse copied without it) is left out of the view by
`rebase` with a warning naming it, so the warehouse still opens (`islandbridge sql`, `islandbridge prune
--apply`, which can drop its run); a load and a build, which would silently carry on with fewer events,
stop with `MissingPartError` naming it until the part is restored or its run pruned.

Atomicity, as for the device-event day files: the parts are linked under a temporary folder and renamed
to a *content-addressed* one (``digest``: the SHA-256 of the parts' bytes) before the load's
transaction; nothing refers to it yet. The transaction replaces the run's rows of ``meta.raw_parts`` and
re-creates the view. Folders no longer listed are deleted after the commit (`RawParts.collect_garbage`),
only when ``root`` is this warehouse's (`folder_owner`: a ``raw/`` shared with another warehouse file
through a symbolic link is never cleaned, and a load there stops with `SharedFolderError`).
A kill at any point leaves the previous view on intact files; loading the same run again finds the same
folder and changes nothing.

A warehouse from before this layout holds the log as a table; the first load after it writes each of the
table's run slices out as parts once (`RawParts.adopt`) and replaces the table by the view.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from islandbridge.errors import TerminalError, count
from islandbridge.landing import folder_owner
from islandbridge.storage import has_table, transaction

DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.raw_parts (
    relation VARCHAR NOT NULL, run_id VARCHAR NOT NULL, file VARCHAR NOT NULL, rows BIGINT NOT NULL,
    columns VARCHAR[] NOT NULL
);
"""
RUN_FOLDER = "_run_id={run_id}"
ROOT_NAME = "raw"  # the parts' root: this folder beside the warehouse file

log = logging.getLogger(__name__)
# An absolute path, as earlier versions listed parts: POSIX, or Windows (C:\… or C:/…; LIKE has no escape)
_ABSOLUTE = r"(file LIKE '/%' OR file LIKE '_:\%' OR file LIKE '_:/%')"
_WINDOWS = re.compile(r"[A-Za-z]:[\\/]")


class MissingPartError(TerminalError):
    """A part listed in ``meta.raw_parts`` is not under the warehouse's ``raw`` folder.

    Terminal: the file was deleted or the warehouse copied without it; restore it, retrying cannot help."""


@dataclass(frozen=True)
class StagedParts:
    """A run's parts, linked under their content-addressed folder, not yet listed anywhere."""

    run_id: str
    files: tuple[tuple[str, int], ...]  # (path relative to the root, rows)
    columns: tuple[str, ...]


class RawParts:
    """The Parquet parts of one ``raw.{source}__{stream}`` relation under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, source: str, stream: str) -> None:
        self.relation = f"raw.{source}__{stream}"
        self.root = Path(root).absolute()
        self.folder = self.root / f"{source}__{stream}"

    def stage(self, fs: pafs.FileSystem, landed: str, run_id: str, columns: list[str]) -> StagedParts:
        """Before the transaction: bring the landed parts under ``landed`` (on ``fs``) into the folder."""
        run_folder = self.folder / RUN_FOLDER.format(run_id=run_id)
        run_folder.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=run_folder))
        try:
            names = sorted(
                posixpath.basename(i.path)
                for i in fs.get_file_info(pafs.FileSelector(landed, allow_not_found=True))
                if i.type == pafs.FileType.File and i.path.endswith(".parquet")
            )
            for name in names:
                _link(fs, posixpath.join(landed, name), temp / name)
            final = run_folder / _digest(temp, names)
            if final.exists():  # the same parts as before: the listed folder stays as it is
                shutil.rmtree(temp)
            else:
                os.replace(temp, final)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        files = tuple(
            ((final / n).relative_to(self.root).as_posix(), pq.ParquetFile(final / n).metadata.num_rows)
            for n in names
        )
        return StagedParts(run_id, files, tuple(columns))

    def publish(self, con: duckdb.DuckDBPyConnection, staged: StagedParts) -> None:
        """Inside the load's transaction: list the staged parts as the run's slice, re-create the view.
        Raises `SharedFolderError` when ``root`` belongs to another warehouse (its owner would delete them)."""
        folder_owner.require(con, self.root)
        _relativise(con, self.root)
        self._list(con, staged)
        refresh_view(con, self.relation, self.root)

    def _list(self, con: duckdb.DuckDBPyConnection, staged: StagedParts) -> None:
        con.execute(DDL)
        con.execute(
            "DELETE FROM meta.raw_parts WHERE relation = ? AND run_id = ?", [self.relation, staged.run_id]
        )
        rows = [[self.relation, staged.run_id, f, n, list(staged.columns)] for f, n in staged.files]
        if not rows:  # a run that landed nothing still records its columns, so the view keeps them
            rows = [[self.relation, staged.run_id, "", 0, list(staged.columns)]]
        con.executemany("INSERT INTO meta.raw_parts VALUES (?, ?, ?, ?, ?)", rows)

    def stage_rows(self, con: duckdb.DuckDBPyConnection, run_id: str, rows: pa.Table) -> StagedParts:
        """Before a transaction: ``rows`` (more rows of run ``run_id``, e.g. replayed from quarantine) as one
        more part in the columns and types of the run's listed parts, under its own content-addressed folder."""
        listed = con.execute(
            "SELECT file, columns FROM meta.raw_parts WHERE relation = ? AND run_id = ? ORDER BY file DESC",
            [self.relation, run_id],
        ).fetchall()
        columns = [c for c in (listed[0][1] if listed else _columns(con, self.relation)) if c != "_run_id"]
        like = pq.read_schema(self.root / listed[0][0]) if listed and listed[0][0] else pa.schema([])
        arrays = []
        for c in columns:
            kind = like.field(c).type if c in like.names else pa.string()
            arrays.append(rows[c].cast(kind) if c in rows.column_names else pa.nulls(rows.num_rows, kind))
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=self.folder) as out:
            pq.write_table(
                pa.table(arrays, names=columns), Path(out) / "part-replayed.parquet", compression="zstd"
            )
            return self.stage(pafs.LocalFileSystem(), out, run_id, columns)

    def append(self, con: duckdb.DuckDBPyConnection, staged: StagedParts) -> None:
        """Inside the transaction: list the staged parts *in addition* to the run's slice, re-create the view."""
        folder_owner.require(con, self.root)
        _relativise(con, self.root)
        rows = [[self.relation, staged.run_id, f, n, list(staged.columns)] for f, n in staged.files]
        con.executemany("INSERT INTO meta.raw_parts VALUES (?, ?, ?, ?, ?)", rows)
        refresh_view(con, self.relation, self.root)

    def adopt(self, con: duckdb.DuckDBPyConnection, skip_run: str) -> None:
        """Inside the transaction: a legacy table's run slices (but ``skip_run``'s) become parts, then the
        table is dropped (the view replaces it in `publish`)."""
        if not _is_table(con, self.relation):
            return
        columns = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
                "AND table_name = ? AND column_name <> '_run_id' ORDER BY ordinal_position",
                [self.relation.split(".", 1)[1]],
            ).fetchall()
        ]
        quoted = ", ".join(f'"{c}"' for c in columns)
        runs = con.execute(f"SELECT DISTINCT _run_id FROM {self.relation} ORDER BY 1").fetchall()
        for (run_id,) in runs:
            if run_id == skip_run:
                continue
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".tmp-", dir=self.folder) as out:
                part = Path(out) / "part-00000.parquet"
                escaped = str(part).replace("'", "''")
                con.execute(
                    f"COPY (SELECT {quoted} FROM {self.relation} WHERE _run_id = ?) TO '{escaped}' "
                    "(FORMAT parquet, COMPRESSION zstd)",
                    [run_id],
                )
                staged = self.stage(pafs.LocalFileSystem(), out, run_id, columns)
            self._list(con, staged)
        con.execute(f"DROP TABLE {self.relation}")

    def collect_garbage(self, con: duckdb.DuckDBPyConnection) -> int:
        """After the commit: delete run folders and parts no longer listed (and leftovers of a failed load)."""
        if not self.folder.is_dir() or not _owned(con, self.root):
            return 0
        # Resolved on both sides: one folder reached by two spellings (a symlink, a relative path) is one.
        listed = [f for (f,) in _listed(con, self.relation)]
        if any(_inside(self.root, f) is None for f in listed):  # another warehouse's rows: `rebase` first
            return 0
        live = {(self.root / f).parent.resolve() for f in listed}
        removed = 0
        for run_folder in sorted(p for p in self.folder.iterdir() if p.is_dir()):
            if run_folder.name.startswith(".tmp-"):  # a legacy table's slice being written when killed
                shutil.rmtree(run_folder)
                continue
            for folder in sorted(p for p in run_folder.iterdir() if p.is_dir()):
                if folder.resolve() not in live:
                    shutil.rmtree(folder)
                    removed += 1
            if not any(run_folder.iterdir()):
                run_folder.rmdir()
        return removed


def is_parts(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """Whether ``relation`` is a view over parts listed in ``meta.raw_parts`` (not a table)."""
    return (
        has_table(con, "meta.raw_parts")
        and not _is_table(con, relation)
        and bool(
            con.execute("SELECT count(*) FROM meta.raw_parts WHERE relation = ?", [relation]).fetchall()[0][0]
        )
    )


def parts_root(con: duckdb.DuckDBPyConnection, relation: str) -> Path | None:
    """The ``root`` the listed parts of ``relation`` live under (``None`` when no part is listed)."""
    return warehouse_root(con) if _listed(con, relation) else None


def warehouse_root(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The parts' root of the warehouse ``con`` uses (its default database): the ``raw`` folder beside its
    file; ``None`` for an in-memory database (its paths are taken as they are)."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return Path(row[0][0]).absolute().parent / ROOT_NAME if row and row[0][0] else None


def slice_sql(con: duckdb.DuckDBPyConnection, relation: str, runs: list[str]) -> str:
    """SQL to select from for the rows of ``runs`` only: their parts read directly (not every run's parts
    through the view), or the table itself."""
    if not is_parts(con, relation):
        return relation
    return f"({_select(_columns(con, relation), _slice_files(con, relation, runs))})"


def _slice_files(con: duckdb.DuckDBPyConnection, relation: str, runs: list[str]) -> list[str]:
    return _on_disk(
        con,
        relation,
        [
            f
            for (f,) in con.execute(
                "SELECT file FROM meta.raw_parts WHERE relation = ? AND list_contains(?, run_id) AND file <> '' "
                "ORDER BY run_id, file",
                [relation, runs],
            ).fetchall()
        ],
    )


def slice_rows_sql(con: duckdb.DuckDBPyConnection, relation: str, runs: list[str]) -> str:
    """As `slice_sql`, with ``_ib_row``: a number that orders the rows as a scan of the slice would read
    them (for parts: the file's place in the run-then-file list, then the row in the file)."""
    if not is_parts(con, relation):
        return f"(SELECT *, rowid AS _ib_row FROM {relation})"
    files = _slice_files(con, relation, runs)
    columns = _columns(con, relation)
    if not files:
        return f"(SELECT *, NULL::BIGINT AS _ib_row FROM ({_select(columns, files)}))"
    paths = _path_list(files)
    picks = ", ".join(f'"{c}"' for c in columns)
    return (
        f"(SELECT {picks}, _run_id, (list_position({paths}, filename)::BIGINT << 40) + file_row_number AS _ib_row "
        f"FROM read_parquet({paths}, hive_partitioning = true, hive_types = {{'_run_id': VARCHAR}}, "
        "union_by_name = true, filename = true, file_row_number = true))"
    )


def loaded_runs_sql(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """SQL selecting the distinct ``_run_id`` of the runs with a slice in ``relation``."""
    if is_parts(con, relation):
        escaped = relation.replace("'", "''")
        return f"SELECT DISTINCT run_id AS _run_id FROM meta.raw_parts WHERE relation = '{escaped}'"
    return f"SELECT DISTINCT _run_id FROM {relation}"


def drop_runs(con: duckdb.DuckDBPyConnection, relation: str, where: str, params: dict, apply: bool) -> int:
    """Retention: the rows of the runs ``where`` selects (on ``run_id``) leave the view; returns how many.
    Their parts are deleted by the next `RawParts.collect_garbage` (the next load) or `remove_unlisted`."""
    condition = f"relation = $relation AND run_id IN (SELECT run_id FROM meta.runs WHERE {where})"
    values = {**params, "relation": relation}
    n = con.execute(f"SELECT coalesce(sum(rows), 0) FROM meta.raw_parts WHERE {condition}", values).fetchall()
    if apply and n[0][0]:
        columns = _columns(con, relation)
        con.execute(f"DELETE FROM meta.raw_parts WHERE {condition}", values)
        if not _columns(con, relation):  # every slice gone: a row without a run keeps the view's columns
            con.execute("INSERT INTO meta.raw_parts VALUES (?, '', '', 0, ?)", [relation, columns])
        refresh_view(con, relation, lost_ok=True)  # retention may run before a lost part's run is reached
    return int(n[0][0])


def remove_unlisted(con: duckdb.DuckDBPyConnection, relation: str, listed_before: set[str]) -> int:
    """After a commit: delete the parts that were listed before and are not any more — only those under
    this warehouse's root (a path elsewhere is another warehouse's file: left alone)."""
    root = warehouse_root(con)
    now = {f for (f,) in _listed(con, relation)}
    gone = sorted(listed_before - now)
    if root is not None and not _owned(con, root):
        return 0
    for file in gone:
        path = _inside(root, file)
        if path is None:
            continue
        path.unlink(missing_ok=True)
        for empty in (path.parent, path.parent.parent):
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()
    return len(gone)


def listed_files(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    """The parts listed for ``relation`` now (as stored: relative to the root)."""
    return {f for (f,) in _listed(con, relation)}


def refresh_view(
    con: duckdb.DuckDBPyConnection, relation: str, root: Path | None = None, *, lost_ok: bool = False
) -> None:
    """(Re-)create ``relation`` as the view over every listed part, resolved under ``root`` (default: the
    warehouse's, `warehouse_root`). Raises `MissingPartError` when a listed part is not there, or with
    ``lost_ok`` leaves it out of the view with a warning naming it (the warehouse still opens)."""
    files = _on_disk(con, relation, [f for (f,) in _listed(con, relation)], root, lost_ok=lost_ok)
    con.execute(f"CREATE OR REPLACE VIEW {relation} AS {_select(_columns(con, relation), files)}")


def rebase(con: duckdb.DuckDBPyConnection, root: Path) -> int:
    """At a write connection: make the absolute paths of ``meta.raw_parts`` (written by earlier versions)
    relative to ``root`` and re-create each view that reads parts outside ``root`` (a copied, moved or
    restored warehouse), in one transaction. Returns how many paths changed. A path under another root is
    taken as the same tail under ``root``; a part not there is left out of the view with a warning (a load
    or build still stops on it with `MissingPartError`)."""
    if not has_table(con, "meta.raw_parts"):
        return 0
    root = Path(root).absolute()
    with transaction(con):
        moved = _relativise(con, root)
        relations = con.execute("SELECT DISTINCT relation FROM meta.raw_parts ORDER BY 1").fetchall()
        for (relation,) in relations:
            if not _view_reads(con, relation, root):
                refresh_view(con, relation, root, lost_ok=True)
    return moved


def views_elsewhere(con: duckdb.DuckDBPyConnection, root: Path) -> list[str]:
    """The relations whose view reads parts outside ``root`` or whose rows are still absolute (a warehouse
    copied, moved or restored, or written by an earlier version): what `rebase` would change."""
    if not has_table(con, "meta.raw_parts"):
        return []
    root = Path(root).absolute()
    relations = con.execute(
        f"SELECT relation, bool_or({_ABSOLUTE}) FROM meta.raw_parts GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return [r for r, legacy in relations if legacy or not _view_reads(con, r, root)]


def _relativise(con: duckdb.DuckDBPyConnection, root: Path) -> int:
    """The absolute rows of ``meta.raw_parts`` made relative to ``root`` (see `rebase`); how many."""
    con.execute(DDL)
    absolute = [
        f for (f,) in con.execute(f"SELECT DISTINCT file FROM meta.raw_parts WHERE {_ABSOLUTE}").fetchall()
    ]
    moved = {f: r for f, r in ((f, _relative(root, f)) for f in absolute) if r is not None}
    if moved:
        con.executemany(
            "UPDATE meta.raw_parts SET file = ? WHERE file = ?", [[r, f] for f, r in moved.items()]
        )
    return len(moved)


def _relative(root: Path, file: str) -> str | None:
    """``file`` (absolute) relative to ``root``: its place under ``root`` (any spelling of it), else its
    ``{source}__{stream}/_run_id=…/{digest}/part`` tail (where a copy holds the part, or a restore puts
    it), else ``None`` (no such tail: the row stays as it is)."""
    if _WINDOWS.match(file):  # written on Windows: only its tail can be taken here
        parts = PureWindowsPath(file).parts
        return PurePosixPath(*parts[-4:]).as_posix() if len(parts) > 4 else None
    path = Path(file)
    for base, candidate in ((root, path), (root.resolve(), path), (root.resolve(), path.resolve())):
        if candidate.is_relative_to(base):
            return candidate.relative_to(base).as_posix()
    return Path(*path.parts[-4:]).as_posix() if len(path.parts) > 4 else None


def _view_reads(con: duckdb.DuckDBPyConnection, relation: str, root: Path) -> bool:
    """Whether ``relation`` (a view) reads its parts under ``root``; a table is left as it is."""
    schema, name = relation.split(".", 1)
    view = con.execute(
        "SELECT sql FROM duckdb_views() WHERE database_name = current_database() AND schema_name = ? "
        "AND view_name = ?",
        [schema, name],
    ).fetchall()
    if not view:
        return _is_table(con, relation)
    # the paths the view reads (DuckDB keeps it re-written: compared as a set, not as text); a lost part is
    # left out of it (`refresh_view` with ``lost_ok``)
    present = {str(root / f) for (f,) in _listed(con, relation) if (root / f).is_file()}
    quoted = (q.replace("''", "'") for q in re.findall(r"'((?:[^']|'')*)'", view[0][0]))
    return {q for q in quoted if q.endswith(".parquet")} == present


def _on_disk(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    files: list[str],
    root: Path | None = None,
    *,
    lost_ok: bool = False,
) -> list[str]:
    """``files`` (as listed) as absolute paths under ``root`` (default `warehouse_root`); `MissingPartError`
    when one is not there (a view or a read over it would fail with a bare DuckDB error), or with
    ``lost_ok`` a warning naming it, and the paths of the others."""
    root = root or warehouse_root(con)
    paths = [str(root / f) if root else f for f in files]
    missing = [f for f, p in zip(files, paths, strict=True) if not Path(p).is_file()]
    if missing and not lost_ok:
        raise MissingPartError(_missing_message(root, missing, "is missing from", relation))
    if missing:  # the paths name runs and digests only: no personal data
        log.warning(
            "%s Until then the view leaves it out.",
            _missing_message(root, missing, "is missing from", relation),
        )
    return [p for p in paths if Path(p).is_file()]


def _owned(con: duckdb.DuckDBPyConnection, root: Path) -> bool:
    """Whether this warehouse owns ``root`` (`folder_owner.claim`); if not, a warning says whose it is."""
    if folder_owner.claim(con, root):
        return True
    log.warning("%s", folder_owner.shared_message(root, folder_owner.other_owner(con, root)))
    return False


def _inside(root: Path | None, file: str) -> Path | None:
    """``file`` (as listed) under ``root``, or ``None`` when it lies outside it (never to be deleted)."""
    path = root / file if root else Path(file)
    if root is not None and not path.resolve().is_relative_to(root.resolve()):
        return None
    return path


def _missing_message(root: Path | None, files: list[str], how: str, relation: str = "meta.raw_parts") -> str:
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (
        f"{count(len(files), 'raw part')} of {relation} {how} {root}: {shown}. "
        "The warehouse was copied, moved or restored without its raw/ folder, or the files were deleted. "
        "Copy or restore the warehouse file together with the raw/ and events/ folders beside it "
        "(docs/operations.md, 'Backup, restore and move'); a run whose parts are lost for good can be dropped "
        "with 'islandbridge prune --apply' once retention reaches it."
    )


def _listed(con, relation: str) -> list[tuple[str]]:
    if not has_table(con, "meta.raw_parts"):
        return []
    return con.execute(
        "SELECT file FROM meta.raw_parts WHERE relation = ? AND file <> '' ORDER BY run_id, file", [relation]
    ).fetchall()


def _columns(con, relation: str) -> list[str]:
    """Every column any run's parts declared, in the order they first appeared (oldest run first)."""
    seen: dict[str, None] = {}
    for (columns,) in con.execute(
        "SELECT columns FROM meta.raw_parts WHERE relation = ? ORDER BY run_id, file", [relation]
    ).fetchall():
        seen.update(dict.fromkeys(c for c in columns if c != "_run_id"))
    return list(seen)


def _select(columns: list[str], files: list[str]) -> str:
    if not files:
        nulls = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in [*columns, "_run_id"])
        return f"SELECT {nulls} WHERE false"
    paths = _path_list(files)
    picks = ", ".join(f'"{c}"' for c in columns)
    return (
        f"SELECT {picks}, _run_id FROM read_parquet({paths}, hive_partitioning = true, "
        "hive_types = {'_run_id': VARCHAR}, union_by_name = true)"
    )


def _path_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _is_table(con, relation: str) -> bool:
    schema, name = relation.split(".", 1)
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
            "AND table_type = 'BASE TABLE'",
            [schema, name],
        ).fetchall()[0][0]
    )


def _link(fs: pafs.FileSystem, source: str, target: Path) -> None:
    """Hard-link a landed part (same local file system); copy it where linking is impossible."""
    if isinstance(fs, pafs.LocalFileSystem):
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    pafs.copy_files(source, str(target), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())


def _digest(folder: Path, names: list[str]) -> str:
    sha = hashlib.sha256()
    for name in names:
        sha.update(name.encode() + b"\0")
        with (folder / name).open("rb") as f:
            sha.update(hashlib.file_digest(f, "sha256").digest())
    return sha.hexdigest()[:16]
