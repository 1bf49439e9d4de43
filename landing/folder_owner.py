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
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from islandbridge.errors import TerminalError

MARKER = ".owner"


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
    if _read(marker) != me:
        marker.parent.mkdir(parents=True, exist_ok=True)
        temp = marker.with_name(f"{MARKER}.tmp-{os.getpid()}")
        temp.write_text(f"{me}\n", encoding="utf-8")
        os.replace(temp, marker)
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
