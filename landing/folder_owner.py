"""Which warehouse a folder of its files (``raw/``, ``events/`` beside it) belongs to, so that one never
deletes another's.

Two warehouse files can reach one folder: a copy made with ``cp -a`` of a run folder whose ``raw/`` is a
symbolic link (to a shared disk) keeps the link, and two ``.duckdb`` files in one folder share the
folders beside them. Each deletes the files it does not list (`RawParts.collect_garbage`, the day files'
`EventStore.collect_garbage`), which are the other's. So the folder holds ``.owner``: the path of the
warehouse file it belongs to. A warehouse writes and deletes files there only when it is that file, or
when no other warehouse file uses the folder: the owner named is gone, or its own folder of that name is
another one (the folder was moved, or copied with ``cp -aL``), or there is no ``.owner`` yet (a new
folder, or one written before the marker) — then it claims the folder by writing its own path there.
Otherwise it deletes nothing there, and a load or build that would add files stops with
`SharedFolderError`, which says how to give each warehouse its own folder.

The marker is written as ``.owner.tmp-<pid>`` and renamed over ``.owner``. A process killed between the
two leaves that file behind; the next claim of the folder removes it once no process of that id is alive
and it is a minute old (`is_marker` tells both names from the folder's data files, for whoever lists the folder).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import duckdb

from islandbridge.errors import TerminalError

MARKER = ".owner"
_TEMP = f"{MARKER}.tmp-"  # + the writer's process id
_STALE_S = 60  # a marker being written is renamed within milliseconds


class SharedFolderError(TerminalError):
    """The warehouse's ``raw/`` or ``events/`` folder belongs to another warehouse file that still uses it."""


def warehouse_file(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The file of the warehouse ``con`` uses (its default database), resolved; ``None`` in memory."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    return Path(row[0][0]).resolve() if row and row[0][0] else None


def other_owner(con: duckdb.DuckDBPyConnection, folder: Path) -> Path | None:
    """The other warehouse file that owns ``folder`` and still uses it, else ``None`` (this one owns it)."""
    me = warehouse_file(con)
    owner = _read(Path(folder) / MARKER)
    if me is None or owner is None or _same(owner, me):
        return None
    uses = owner.is_file() and _same(owner.parent / Path(folder).name, Path(folder))
    return owner if uses else None


def _same(a: Path, b: Path) -> bool:
    """One file or folder, however it is spelled: a hard link, another letter case on a file system that
    ignores it, a symlink."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is gone
        return Path(a).resolve() == Path(b).resolve()


def claim(con: duckdb.DuckDBPyConnection, folder: Path) -> bool:
    """Write this warehouse's file into ``folder``'s marker unless another warehouse owns it (`other_owner`);
    whether this warehouse owns it now. An in-memory database owns whatever it is given."""
    me = warehouse_file(con)
    if me is None or other_owner(con, folder) is not None:
        return me is None
    marker = Path(folder) / MARKER
    _remove_stale_temps(marker.parent)
    if _read(marker) != me:
        marker.parent.mkdir(parents=True, exist_ok=True)
        temp = marker.with_name(f"{_TEMP}{os.getpid()}")
        try:
            temp.write_text(f"{me}\n", encoding="utf-8")
            os.replace(temp, marker)
        finally:  # a write that failed (a full disk) leaves no temporary file either
            temp.unlink(missing_ok=True)
    return True


def is_marker(path: Path) -> bool:
    """Whether ``path`` is the folder's owner marker or a marker being written: no data file of it."""
    return path.name == MARKER or path.name.startswith(_TEMP)


def _remove_stale_temps(folder: Path) -> None:
    """Remove the ``.owner.tmp-<pid>`` files of writers no longer running (killed before their rename).

    Only files older than `_STALE_S` too: a writer on another machine or in another container sharing the
    folder has a process id this one cannot see, and renames its file within milliseconds."""
    for temp in folder.glob(f"{_TEMP}*") if folder.is_dir() else ():
        pid = temp.name.removeprefix(_TEMP)
        with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile
            if (
                pid.isascii()
                and pid.isdigit()
                and not _running(int(pid))
                and time.time() - temp.stat().st_mtime > _STALE_S
            ):
                temp.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # gone, or no process id at all (a hand-made name)
        return False
    except PermissionError:  # it exists, under another account
        return True
    return True


def shared_message(folder: Path, owner: Path) -> str:
    return (
        f"{folder} belongs to the warehouse {owner} ({folder / MARKER}), which still uses it: this warehouse "
        "neither deletes nor adds files there. Two warehouses must not share a raw/ or events/ folder (a copy made "
        "with 'cp -a' keeps a symbolic link to it; two .duckdb files in one folder share it): copy with "
        "'cp -aL', which copies the linked folder, or give each warehouse its own folder "
        "(docs/operations.md, 'Backup, restore and move')."
    )


def require(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Claim ``folder`` (`claim`), or raise `SharedFolderError` naming its owner and what to do."""
    if not claim(con, folder):
        raise SharedFolderError(shared_message(Path(folder), other_owner(con, folder)))


def _read(marker: Path) -> Path | None:
    try:
        text = marker.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Path(text) if text else None
